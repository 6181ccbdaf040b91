"""B7: hash validation and low-information gates. ``BAD_HASHES`` is the B7 table (the one
place it lives; tests/api/test_errors.py keeps a few older rows of the same kind).

Submission side: each bad hash is sent after two good ones; the case is refused with a 422
naming the item (``hashes[2]``) and the rule, and nothing reaches the banks. Query side:
the hashes of a flat and of a gradient upload are injected straight into Redis as a case;
uploading those same images must not match it ("not matched: low quality").
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

import httpx
import numpy as np
import pytest
import redis

from fixtures import hostile
from hashsvc.config import Settings
from hashsvc.hashing import hash_bytes
from hashsvc.models import HashEntry
from hashsvc.signals import SIGNALS
from hashsvc.signals.base import popcount
from hashsvc.store import Store, keys
from tests.helpers import PHOTOS, bearer, reupload, upload, victim_hashes
from tests.workers.conftest import Workers, wait_finished

pytestmark = pytest.mark.timeout(180)

MIN_QUALITY_RULE = "quality 49, minimum 50"


def code_with_bits(bits: int, set_bits: int, seed: int) -> str:
    """Hex of a ``bits``-bit code with exactly ``set_bits`` bits set, at seeded positions."""
    vector = np.zeros(bits, dtype=np.uint8)
    vector[random.Random(seed).sample(range(bits), set_bits)] = 1
    return np.packbits(vector).tobytes().hex()


def near_degenerate_pdq() -> str:
    """A synthetic flat/gradient PDQ code with 128 bits set, one set bit moved (distance 2)."""
    degenerate = sorted(c for c in SIGNALS["pdq"].degenerate_codes() if popcount(c) == 128)
    bits = np.unpackbits(np.frombuffer(degenerate[0], dtype=np.uint8))
    bits[np.flatnonzero(bits)[0]] = 0
    bits[np.flatnonzero(bits == 0)[-1]] = 1
    return np.packbits(bits).tobytes().hex()


GOOD_PHASH = "c3d3e3b3c1c19c8c"  # 32 of 64 bits set
PDQ = code_with_bits(256, 128, seed=1)

# (id, bad item, expected code, fragments the message must contain)
BAD_HASHES: list[tuple[str, dict[str, Any], str, tuple[str, ...]]] = [
    ("phash-15", {"signal": "phash", "hash": GOOD_PHASH[:15]}, "invalid_hash", ("16 hex", "15")),
    ("phash-17", {"signal": "phash", "hash": GOOD_PHASH + "0"}, "invalid_hash", ("16 hex", "17")),
    ("pdq-63", {"signal": "pdq", "hash": PDQ[:63], "quality": 90}, "invalid_hash", ("64 hex",)),
    ("pdq-65", {"signal": "pdq", "hash": PDQ + "0", "quality": 90}, "invalid_hash", ("64 hex",)),
    ("non-hex", {"signal": "phash", "hash": "g" + GOOD_PHASH[1:]}, "invalid_hash", ("'g'",)),
    ("0x-prefix", {"signal": "phash", "hash": "0x" + GOOD_PHASH[2:]}, "invalid_hash", ("'x'",)),
    (
        "arabic-indic-digits",
        {"signal": "phash", "hash": "\u0663" * 16},
        "invalid_hash",
        ("non-hex", "position 0"),
    ),
    (
        "fullwidth-digits",
        {"signal": "phash", "hash": "\uff11" + GOOD_PHASH[1:]},
        "invalid_hash",
        ("non-hex",),
    ),
    ("leading-space", {"signal": "phash", "hash": " " + GOOD_PHASH}, "invalid_hash", ("' '",)),
    ("trailing-newline", {"signal": "phash", "hash": GOOD_PHASH + "\n"}, "invalid_hash", ("\\n",)),
    (
        "inner-space",
        {"signal": "phash", "hash": GOOD_PHASH[:8] + " " + GOOD_PHASH[9:]},
        "invalid_hash",
        ("position 8",),
    ),
    ("null", {"signal": "phash", "hash": None}, "invalid_request", ("hashes.2.hash",)),
    ("number", {"signal": "phash", "hash": 1234567890}, "invalid_request", ("hashes.2.hash",)),
    ("unknown-signal", {"signal": "md5", "hash": GOOD_PHASH}, "unknown_signal", ("'md5'",)),
    (
        "phash-popcount-33",
        {"signal": "phash", "hash": code_with_bits(64, 33, seed=2)},
        "low_information_hash",
        ("33 of 64 bits set", "28 to 32"),
    ),
    (
        "phash-popcount-27",
        {"signal": "phash", "hash": code_with_bits(64, 27, seed=3)},
        "low_information_hash",
        ("27 of 64 bits set",),
    ),
    (
        "phash-8000000000000000",
        {"signal": "phash", "hash": "8000000000000000"},
        "low_information_hash",
        ("1 of 64 bits set",),
    ),
    (
        "pdq-popcount-129",
        {"signal": "pdq", "hash": code_with_bits(256, 129, seed=4), "quality": 90},
        "low_information_hash",
        ("129 of 256 bits set", "120 to 128"),
    ),
    (
        "pdq-near-synthetic",
        {"signal": "pdq", "hash": near_degenerate_pdq(), "quality": 90},
        "low_information_hash",
        ("distance 2 to the hash of a synthetic",),
    ),
    (
        "pdq-quality-49",
        {"signal": "pdq", "hash": PDQ, "quality": 49},
        "low_information_hash",
        (MIN_QUALITY_RULE,),
    ),
    (
        "pdq-without-quality",
        {"signal": "pdq", "hash": PDQ},
        "invalid_hash",
        ("quality score",),
    ),
]


def bank_size(redis_url: str) -> int:
    with redis.Redis.from_url(redis_url) as r:
        return sum(int(r.hlen(keys.bank(name))) for name in SIGNALS)


@pytest.fixture
def good_items(settings: Settings) -> list[dict[str, Any]]:
    items = victim_hashes(PHOTOS["coffee"], settings)
    assert {i["signal"] for i in items} == {"pdq", "phash"}
    return items


def submit(client: httpx.Client, items: list[dict[str, Any]]) -> httpx.Response:
    return client.post("/v1/cases", json={"hashes": items})


@pytest.mark.parametrize(
    ("bad", "code", "fragments"), [r[1:] for r in BAD_HASHES], ids=[r[0] for r in BAD_HASHES]
)
def test_bad_hash_refuses_the_whole_case(
    client: httpx.Client,
    redis_url: str,
    good_items: list[dict[str, Any]],
    bad: dict[str, Any],
    code: str,
    fragments: tuple[str, ...],
) -> None:
    response = submit(client, [*good_items, bad])
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == code
    where = "hashes.2" if code == "invalid_request" else "hashes[2]"
    assert where in error["message"]
    for fragment in fragments:
        assert fragment in error["message"], (fragment, error["message"])
    assert bank_size(redis_url) == 0  # nothing accepted, not even the good items


@pytest.mark.parametrize(
    ("name", "where", "first"),
    [("same-text", "hashes[2]", "hashes[1]"), ("upper-case", "hashes[2]", "hashes[1]")],
)
def test_duplicate_hashes_are_refused(
    client: httpx.Client,
    redis_url: str,
    good_items: list[dict[str, Any]],
    name: str,
    where: str,
    first: str,
) -> None:
    again = dict(good_items[1])
    if name == "upper-case":  # the same code in another spelling is the same hash
        again["hash"] = again["hash"].upper()
    response = submit(client, [*good_items, again])
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_hash"
    assert error["message"].startswith(f"{where}: duplicate of {first}"), error["message"]
    assert "given once" in error["message"]
    assert bank_size(redis_url) == 0


def test_repeated_video_frames_are_merged(
    client: httpx.Client, redis_url: str, good_items: list[dict[str, Any]]
) -> None:
    """A video's sampled frames repeat hashes (a still scene), possibly a picture's too: they
    are merged, not refused (the API documents it; the picture list alone must be unique)."""
    other = {"signal": "phash", "hash": code_with_bits(64, 32, seed=50)}
    frames = [other, good_items[0], other, good_items[1]]
    response = client.post("/v1/cases", json={"hashes": good_items, "videos": [{"frames": frames}]})
    assert response.status_code == 201, response.text
    assert response.json()["hash_count"] == len(good_items) + 1
    assert bank_size(redis_url) == len(good_items) + 1


def phash_items(count: int, seed: int) -> list[dict[str, Any]]:
    return [
        {"signal": "phash", "hash": code_with_bits(64, 32, seed=seed + n)} for n in range(count)
    ]


def test_more_than_1000_hashes_are_refused(
    client: httpx.Client, redis_url: str, settings: Settings
) -> None:
    assert settings.max_hashes_per_case == 1000  # the default (tests do not override it)
    response = submit(client, phash_items(1001, seed=100))
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "too_many_hashes"
    assert "1001 hashes" in error["message"]
    assert "at most 1000 are accepted" in error["message"]
    assert bank_size(redis_url) == 0
    # Video frames count with the pictures' hashes: 1 + 1000 is over the limit too.
    items = phash_items(1001, seed=3000)
    body = {"hashes": items[:1], "videos": [{"frames": items[1:]}]}
    response = client.post("/v1/cases", json=body)
    assert response.status_code == 422, response.text
    assert "hashes and videos[].frames together" in response.json()["error"]["message"]
    assert bank_size(redis_url) == 0


def test_exactly_1000_hashes_are_accepted(client: httpx.Client, redis_url: str) -> None:
    response = submit(client, phash_items(1000, seed=100))
    assert response.status_code == 201, response.text
    assert response.json()["hash_count"] == 1000
    assert bank_size(redis_url) == 1000


@pytest.mark.parametrize("name", sorted(PHOTOS))
def test_natural_fixtures_pass(name: str, settings: Settings) -> None:
    hashes = {h.signal: h for h in hash_bytes(PHOTOS[name].read_bytes(), settings)}
    assert popcount(hashes["phash"].code) == 32
    assert popcount(hashes["pdq"].code) == 128
    assert hashes["pdq"].quality is not None
    assert hashes["pdq"].quality >= 50


# --- query side -----------------------------------------------------------------------------

LOW_INFORMATION_UPLOADS = {
    "flat": hostile.flat_image_png((120, 120, 120)),
    "gradient": hostile.gradient_png(),
}


def inject_case(redis_url: str, entries: list[HashEntry]) -> None:
    """Store a case with ``entries`` straight in Redis, past every validation."""

    async def create() -> None:
        store = Store.open(redis_url)
        try:
            await store.cases.create("case_injected_degenerate", "no-secret", entries)
        finally:
            await store.close()

    asyncio.run(create())


@pytest.fixture
def injected(settings: Settings, redis_url: str) -> list[HashEntry]:
    entries = []
    for data in LOW_INFORMATION_UPLOADS.values():
        computed = hash_bytes(data, settings)
        quality = next(h.quality for h in computed if h.signal == "pdq")
        assert quality is not None
        assert quality < settings.pdq_min_quality
        entries += [HashEntry(h.signal, h.code) for h in computed]
    inject_case(redis_url, entries)
    return entries


def test_low_quality_jobs_match_nothing(
    client: httpx.Client,
    api_key: str,
    redis_url: str,
    injected: list[HashEntry],
    workers: Workers,
    settings: Settings,
) -> None:
    assert submit(client, victim_hashes(PHOTOS["coffee"], settings)).status_code == 201
    workers.start()
    uploads = {**LOW_INFORMATION_UPLOADS, "photo": reupload("coffee")}
    jobs = {}
    for name, data in uploads.items():
        response = client.post("/v1/scan/jobs", files=upload(data), headers=bearer(api_key))
        assert response.status_code == 202, response.text
        jobs[name] = response.json()["job_id"]
    final = wait_finished(client, api_key, list(jobs.values()), timeout=60)
    with redis.Redis.from_url(redis_url, decode_responses=True) as r:
        stored = {name: r.hget(keys.job(job_id), "result") for name, job_id in jobs.items()}
    for name in LOW_INFORMATION_UPLOADS:
        status = final[jobs[name]]
        assert status["status"] == "done", status
        assert status["matched"] is False
        assert status["matches"] == []
        assert '"not_matched": "low_quality"' in (stored[name] or "")
    assert final[jobs["photo"]]["matched"] is True  # the gate spares real photos


def test_low_quality_sync_uploads_match_nothing(
    client: httpx.Client,
    api_key: str,
    injected: list[HashEntry],
    settings: Settings,
) -> None:
    assert submit(client, victim_hashes(PHOTOS["coffee"], settings)).status_code == 201
    for name, data in LOW_INFORMATION_UPLOADS.items():
        response = client.post("/v1/scan", files=upload(data), headers=bearer(api_key))
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["matches"] == [], name
        assert body["matched"] is False
        assert body["not_matched"] == "low_quality", name
        pdq = next(h for h in body["hashes"] if h["signal"] == "pdq")
        assert pdq["quality"] < settings.pdq_min_quality  # the hashes are still reported
    photo = client.post("/v1/scan", files=upload(reupload("coffee")), headers=bearer(api_key))
    assert photo.json()["matched"] is True  # the gate spares real photos
    assert photo.json()["not_matched"] is None


def test_low_quality_sync_hash_lists_match_nothing(
    client: httpx.Client, api_key: str, injected: list[HashEntry], settings: Settings
) -> None:
    """Hash-only scans: the list is one image's hashes (as for an upload). A PDQ sent with a
    quality below the minimum makes the whole list match nothing, pHash included; hashes sent
    without a quality are matched as given (hashsvc cannot score a bare code)."""
    flat = hash_bytes(LOW_INFORMATION_UPLOADS["flat"], settings)
    scored = [{"signal": h.signal, "hash": h.hex, "quality": h.quality} for h in flat]
    response = client.post("/v1/scan", json={"hashes": scored}, headers=bearer(api_key))
    assert response.status_code == 200, response.text
    assert response.json()["matches"] == []
    assert response.json()["not_matched"] == "low_quality"
    # Without its quality the same flat PDQ matches the injected degenerate case: documented
    # behaviour (README, scan route), shown here so that a change to it is noticed.
    bare = [{"signal": h.signal, "hash": h.hex} for h in flat]
    response = client.post("/v1/scan", json={"hashes": bare}, headers=bearer(api_key))
    assert response.status_code == 200, response.text
    assert response.json()["matched"] is True
    assert response.json()["not_matched"] is None
