"""S6 (quick form): hash-poisoning circuit breaker and oracle alert, on a real service, a real
Redis and real worker processes.

A benign popular picture is banked through a normal case; three platforms upload near-copies of
it (re-encoded, resized, ...: their upload-side hashes sent as hash-only scans, plus real image
scans and queued jobs), with the breaker's thresholds set low. P1 also marks 3 flags
``not_violating`` (one platform: below the feedback threshold of 2 platforms). Then one key
sends 200 matching hash-only scans.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from fixtures.make_variants import VARIANTS
from hashsvc.config import Settings
from hashsvc.hashing import hash_bytes
from tests.helpers import PHOTOS, bearer, make_platform, reupload, upload, victim_hashes
from tests.workers.conftest import WORKER_ENV, Workers, job_status, wait_for

THRESHOLD = 12  # distinct uploads in the window
PLATFORMS = 3
ORACLE = 200
BREAKER = {
    "breaker_matches_per_window": THRESHOLD,
    "breaker_platforms": PLATFORMS,
    "breaker_window_s": 300.0,
    "feedback_not_violating_platforms": 2,
    "oracle_alert_matches": ORACLE,
}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update=BREAKER)


@pytest.fixture
def breaker_workers(
    redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Workers]:
    """Real worker processes with the same breaker settings as the API."""
    for name, value in BREAKER.items():
        monkeypatch.setitem(WORKER_ENV, f"HASHSVC_{name.upper()}", str(value))
    log_dir = tmp_path / "worker-logs"
    log_dir.mkdir()
    pool = Workers(redis_url, log_dir)
    yield pool
    pool.stop_all()


def near_copies(name: str, settings: Settings) -> list[list[dict[str, Any]]]:
    """The upload-side hashes of everyday re-uploads of a fixture, as hash-only scans."""
    copies = []
    for variant in VARIANTS:
        hashes = hash_bytes(reupload(name, variant), settings, upload=True)
        copies.append([{"signal": h.signal, "hash": h.hex, "quality": h.quality} for h in hashes])
    return copies


def scan_hashes(client: httpx.Client, key: str, hashes: list[dict[str, Any]]) -> list[str]:
    response = client.post("/v1/scan", json={"hashes": hashes}, headers=bearer(key))
    assert response.status_code == 200, response.text
    return sorted({m["flag_id"] for m in response.json()["matches"]})  # a hit per signal


def scan_image(client: httpx.Client, key: str, data: bytes) -> list[str]:
    response = client.post("/v1/scan", files=upload(data), headers=bearer(key))
    assert response.status_code == 200, response.text
    return sorted({m["flag_id"] for m in response.json()["matches"]})  # a hit per signal


def run_job(client: httpx.Client, key: str, data: bytes) -> dict[str, Any]:
    queued = client.post("/v1/scan/jobs", files=upload(data), headers=bearer(key))
    assert queued.status_code == 202, queued.text
    job_id = queued.json()["job_id"]
    wait_for(lambda: job_status(client, key, job_id)["status"] in ("done", "failed"), 60)
    status = job_status(client, key, job_id)
    assert status["status"] == "done", status
    return status


def case_flags(client: httpx.Client, case_id: str, secret: str) -> list[dict[str, Any]]:
    response = client.get(f"/v1/cases/{case_id}", headers=bearer(secret))
    assert response.status_code == 200
    matches: list[dict[str, Any]] = response.json()["matches"]
    return matches


def audit(client: httpx.Client, admin_key: str) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = client.get(
        "/v1/admin/audit", params={"limit": 100}, headers=bearer(admin_key)
    ).json()["entries"]
    return entries


def test_s6_breaker_quarantines_a_flooded_hash_and_release_restores_it(
    client: httpx.Client,
    settings: Settings,
    redis_url: str,
    admin_key: str,
    breaker_workers: Workers,
) -> None:
    workers = breaker_workers
    workers.start()
    popular = client.post("/v1/cases", json={"hashes": victim_hashes(PHOTOS["coffee"], settings)})
    unrelated = client.post("/v1/cases", json={"hashes": victim_hashes(PHOTOS["rocket"], settings)})
    (case_a, secret_a), (case_b, secret_b) = (
        (r.json()["case_id"], r.json()["secret"]) for r in (popular, unrelated)
    )
    keys = [make_platform(settings, redis_url, f"P{n}") for n in (1, 2, 3)]
    copies = near_copies("coffee", settings)
    rocket_copies = near_copies("rocket", settings)
    images = [reupload("coffee", v) for v in ("reencode_q60", "resize_half", "webp_q75")]

    # The flood: round-robin over the platforms, near-copies as hash-only scans, a few real
    # image scans among them. Each upload is counted once; the THRESHOLD-th trips the breaker
    # in the Lua call that counts it, so exactly THRESHOLD - 1 flags are raised (sequential
    # scans: nothing in flight).
    flagged: list[tuple[str, str]] = []  # (platform key, flag id)
    for n in range(3 * THRESHOLD):
        key = keys[n % 3]
        if n % 5 == 4:
            found = scan_image(client, key, images[n % len(images)])
        else:
            found = scan_hashes(client, key, copies[n % len(copies)])
        flagged += [(key, f) for f in found]
        # Unrelated hashes keep matching all along: 0 false suppressions.
        if n % 6 == 0:
            assert len(scan_hashes(client, key, rocket_copies[n % len(rocket_copies)])) == 1
    assert len(flagged) == THRESHOLD - 1
    assert len(case_flags(client, case_a, secret_a)) == THRESHOLD - 1

    # P1 marks 3 of its flags not_violating: one platform, below the feedback threshold.
    p1_flags = [f for k, f in flagged if k == keys[0]][:3]
    for flag_id in p1_flags:
        decided = client.post(
            f"/v1/flags/{flag_id}/decision",
            json={"decision": "not_violating"},
            headers=bearer(keys[0]),
        )
        assert decided.status_code == 200, decided.text

    # Operators see the quarantine, its reason, the case, matches and decisions per platform.
    queue = client.get("/v1/admin/quarantine", headers=bearer(admin_key))
    assert queue.status_code == 200, queue.text
    quarantined = queue.json()["hashes"]
    assert quarantined
    assert {q["case_id"] for q in quarantined} == {case_a}
    assert {q["reason"] for q in quarantined} == {"breaker"}
    pdq = [q for q in quarantined if q["signal"] == "pdq"]
    assert len(pdq) == 1
    record = pdq[0]
    assert record["state"] == "quarantined"
    assert record["window"]["platforms"] == PLATFORMS
    assert record["window"]["uploads"] >= THRESHOLD
    assert sum(record["matches_by_platform"].values()) == record["matches"] == 3 * THRESHOLD
    assert record["held"] == 3 * THRESHOLD - (THRESHOLD - 1)
    p1_id = next(iter(d for d in record["decisions_by_platform"]))
    assert record["decisions_by_platform"] == {p1_id: {"not_violating": 3}}
    refs = [q["hash_ref"] for q in quarantined]
    trips = [e for e in audit(client, admin_key) if e["action"] == "hash.quarantine"]
    assert {e["object"] for e in trips} == set(refs)
    assert {e["actor"] for e in trips} == {"breaker"}

    # The victim sees "under review", never why; the unrelated case stays active.
    status_a = client.get(f"/v1/cases/{case_a}", headers=bearer(secret_a)).json()
    assert status_a["status"] == "under review"
    assert "breaker" not in str(status_a)
    assert "quarantin" not in str(status_a)
    status_b = client.get(f"/v1/cases/{case_b}", headers=bearer(secret_b)).json()
    assert status_b["status"] == "active"

    # 0 new flags from that hash: hash-only scans, image scans and queued jobs (real worker).
    workers.wait_ready()
    for key, hashes in zip(itertools.cycle(keys), copies * 2, strict=False):
        assert scan_hashes(client, key, hashes) == []
    for key, data in zip(keys, images, strict=True):
        assert scan_image(client, key, data) == []
        assert run_job(client, key, data)["matches"] == []
    assert run_job(client, keys[1], reupload("rocket"))["matches"]
    assert len(case_flags(client, case_a, secret_a)) == THRESHOLD - 1

    # Oracle alert: one key sends ORACLE matching hash-only scans (held or not, they match).
    for hashes in itertools.islice(itertools.cycle(copies), ORACLE):
        scan_hashes(client, keys[2], hashes)
    alerts = [e for e in audit(client, admin_key) if e["action"] == "oracle.alert"]
    assert len(alerts) == 1
    assert alerts[0]["object"].startswith("platform:")
    assert alerts[0]["object"] != f"platform:{p1_id}"

    # Release restores flagging (sync scans and jobs), audited with the operator's key id.
    queue = client.get("/v1/admin/quarantine", headers=bearer(admin_key))
    refs = [q["hash_ref"] for q in queue.json()["hashes"]]  # pHash may have tripped since
    for ref in refs:
        released = client.post(f"/v1/admin/quarantine/{ref}/release", headers=bearer(admin_key))
        assert released.status_code == 200, released.text
        assert released.json()["state"] == "active"
    again = client.post(f"/v1/admin/quarantine/{refs[0]}/release", headers=bearer(admin_key))
    assert again.status_code == 409
    assert len(scan_hashes(client, keys[0], copies[0])) == 1
    assert run_job(client, keys[1], images[0])["matches"]
    status_a = client.get(f"/v1/cases/{case_a}", headers=bearer(secret_a)).json()
    assert status_a["status"] == "active"
    releases = [e for e in audit(client, admin_key) if e["action"] == "hash.release"]
    assert {e["object"] for e in releases} == set(refs)
    assert all(e["actor"].startswith("admin:") for e in releases)


def test_s6_confirmed_hash_is_never_quarantined_again(
    client: httpx.Client, settings: Settings, redis_url: str, admin_key: str
) -> None:
    case = client.post("/v1/cases", json={"hashes": victim_hashes(PHOTOS["coffee"], settings)})
    case_id, secret = case.json()["case_id"], case.json()["secret"]
    keys = [make_platform(settings, redis_url, f"P{n}") for n in (1, 2, 3)]
    copies = near_copies("coffee", settings)
    for n in range(THRESHOLD):
        scan_hashes(client, keys[n % 3], copies[n % len(copies)])
    refs = [
        q["hash_ref"]
        for q in client.get("/v1/admin/quarantine", headers=bearer(admin_key)).json()["hashes"]
    ]
    assert refs
    for ref in refs:
        confirmed = client.post(f"/v1/admin/quarantine/{ref}/confirm", headers=bearer(admin_key))
        assert confirmed.status_code == 200, confirmed.text
        assert confirmed.json()["state"] == "confirmed"
    flags = sum(
        len(scan_hashes(client, keys[n % 3], copies[n % len(copies)])) for n in range(3 * THRESHOLD)
    )
    assert flags == 3 * THRESHOLD
    assert client.get("/v1/admin/quarantine", headers=bearer(admin_key)).json()["total"] == 0
    assert client.get(f"/v1/cases/{case_id}", headers=bearer(secret)).json()["status"] == "active"
    reset = client.post(f"/v1/admin/hashes/{refs[0]}/reset", headers=bearer(admin_key))
    assert reset.status_code == 200
    assert reset.json()["state"] == "active"
