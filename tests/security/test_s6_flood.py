"""S6 under concurrency: three platforms flood a banked popular picture with near-copies from
many threads at once (hash-only and image scans), while unrelated cases keep being scanned.

The breaker (threshold 50 distinct uploads from 3 platforms, issue #6) must trip once, raise
at most ``threshold - 1 + in-flight`` flags, none after, suppress no unrelated match, and
leave one audit entry per quarantined hash. Quick form (CI): 300 uploads; full form
(``--full-chaos``, ``make chaos``): 1,000 uploads, as in the plan's S6.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from hashsvc.config import Settings
from tests.helpers import PHOTOS, bearer, make_platform, reupload, upload, victim_hashes
from tests.security.test_s6_poisoning import case_flags, near_copies, scan_hashes

THRESHOLD = 50
PLATFORMS = 3
IN_FLIGHT = 12  # client threads: uploads that may be admitted while the trip is in flight
UNRELATED = ("rocket", "astronaut", "chelsea", "retina", "camera", "hubble_deep_field")
BREAKER = {
    "breaker_matches_per_window": THRESHOLD,
    "breaker_platforms": PLATFORMS,
    "breaker_window_s": 300.0,
    "oracle_alert_matches": 1_000_000,  # the oracle alert is S6's quick form's business
}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update=BREAKER)


@pytest.fixture
def uploads(request: pytest.FixtureRequest) -> int:
    return 1000 if request.config.getoption("--full-chaos") else 300


def submit(client: httpx.Client, settings: Settings, name: str) -> tuple[str, str]:
    response = client.post("/v1/cases", json={"hashes": victim_hashes(PHOTOS[name], settings)})
    assert response.status_code == 201, response.text
    return response.json()["case_id"], response.json()["secret"]


def whole_audit(client: httpx.Client, admin_key: str) -> list[dict[str, Any]]:
    """Every audit entry, newest first (page after page)."""
    entries: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 100}
    while True:
        page = client.get("/v1/admin/audit", params=params, headers=bearer(admin_key)).json()
        entries += page["entries"]
        if page["next_before"] is None:
            return entries
        params["before"] = page["next_before"]


def scan_image(client: httpx.Client, key: str, data: bytes) -> list[str]:
    """An image scan, retried as a platform would when the decoders are all busy (503)."""
    for _ in range(50):
        response = client.post("/v1/scan", files=upload(data), headers=bearer(key))
        if response.status_code != 503:
            break
        time.sleep(0.1)  # sooner than its Retry-After: the test is not about waiting
    assert response.status_code == 200, response.text
    return sorted({m["flag_id"] for m in response.json()["matches"]})


def test_s6_concurrent_flood_trips_the_breaker_once(
    client: httpx.Client, settings: Settings, redis_url: str, admin_key: str, uploads: int
) -> None:
    popular, popular_secret = submit(client, settings, "coffee")
    unrelated = {name: submit(client, settings, name) for name in UNRELATED}
    keys = [make_platform(settings, redis_url, f"P{n}") for n in range(1, PLATFORMS + 1)]
    copies = near_copies("coffee", settings)
    images = [reupload("coffee", v) for v in ("reencode_q60", "resize_half", "webp_q75")]
    others = {name: near_copies(name, settings) for name in UNRELATED}

    # Every 10th upload is of an unrelated picture (each scanned well under the threshold,
    # so none of them may trip); every 7th flood upload is a real image scan.
    def task(n: int) -> Callable[[], tuple[str, list[str]]]:
        key = keys[n % PLATFORMS]
        if n % 10 == 9:
            name = UNRELATED[(n // 10) % len(UNRELATED)]
            hashes = others[name][(n // 60) % len(others[name])]
            return lambda: (name, scan_hashes(client, key, hashes))
        if n % 7 == 6:
            data = images[n % len(images)]
            return lambda: ("coffee", scan_image(client, key, data))
        hashes = copies[n % len(copies)]
        return lambda: ("coffee", scan_hashes(client, key, hashes))

    started = time.monotonic()
    with ThreadPoolExecutor(IN_FLIGHT) as pool:
        results = list(pool.map(lambda job: job(), [task(n) for n in range(uploads)]))
    elapsed = time.monotonic() - started

    flood_flags = sum(len(found) for name, found in results if name == "coffee")
    unrelated_scans = [found for name, found in results if name != "coffee"]
    # 0 false suppressions: every unrelated upload raised its one flag.
    assert all(len(found) == 1 for found in unrelated_scans), "an unrelated match was held"
    assert THRESHOLD - 1 <= flood_flags <= THRESHOLD - 1 + IN_FLIGHT
    assert len(case_flags(client, popular, popular_secret)) == flood_flags

    # Quarantined once, by the breaker, with one audit entry per quarantined hash.
    queue: list[dict[str, Any]] = client.get(
        "/v1/admin/quarantine", headers=bearer(admin_key)
    ).json()["hashes"]
    assert {q["case_id"] for q in queue} == {popular}
    assert {q["reason"] for q in queue} == {"breaker"}
    assert any(q["signal"] == "pdq" for q in queue)
    trips = [e for e in whole_audit(client, admin_key) if e["action"] == "hash.quarantine"]
    assert sorted(e["object"] for e in trips) == sorted(q["hash_ref"] for q in queue)
    status = client.get(f"/v1/cases/{popular}", headers=bearer(popular_secret)).json()
    assert status["status"] == "under review"
    for case_id, secret in unrelated.values():
        answer = client.get(f"/v1/cases/{case_id}", headers=bearer(secret)).json()
        assert answer["status"] == "active"

    # Afterwards: no new flag from the flooded picture, from any platform.
    for key, hashes in zip(itertools.cycle(keys), copies, strict=False):
        assert scan_hashes(client, key, hashes) == []
    assert len(case_flags(client, popular, popular_secret)) == flood_flags
    print(
        f"\nS6 flood: {uploads} uploads from {PLATFORMS} platforms, {IN_FLIGHT} in flight, in "
        f"{elapsed:.1f} s ({uploads / elapsed:.0f}/s): {flood_flags} flags before the trip "
        f"(threshold {THRESHOLD}), {len(queue)} hash(es) quarantined, "
        f"{len(unrelated_scans)} unrelated uploads all flagged, 0 flags after"
    )
