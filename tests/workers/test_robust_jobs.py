"""Re-uploads that plain PDQ misses (flips, quarter turns, borders) match through a real worker,
which looks up the upload-side views like the sync scan (tests/api/test_robust_scan.py)."""

from __future__ import annotations

import httpx

from hashsvc.config import Settings
from tests.helpers import PHOTOS, bearer, reupload, upload, victim_hashes
from tests.workers.conftest import Workers, wait_finished

HARD = ("hflip", "rotate90", "white_border_10pct")


def test_hard_reuploads_match_through_a_worker(
    client: httpx.Client, settings: Settings, api_key: str, workers: Workers
) -> None:
    hashes = victim_hashes(PHOTOS["rocket"], settings)
    assert client.post("/v1/cases", json={"hashes": hashes}).status_code == 201
    workers.start()
    jobs = {}
    for variant in (*HARD, None):
        data = reupload("rocket", variant) if variant else reupload("coffee", "hflip")
        response = client.post("/v1/scan/jobs", files=upload(data), headers=bearer(api_key))
        assert response.status_code == 202, response.text
        jobs[variant] = response.json()["job_id"]

    final = wait_finished(client, api_key, list(jobs.values()), timeout=90)

    assert {v: final[j]["matched"] for v, j in jobs.items()} == {
        "hflip": True,
        "rotate90": True,
        "white_border_10pct": True,
        None: False,  # another photo, flipped
    }
