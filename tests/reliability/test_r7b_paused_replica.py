"""R7(b): a real API process paused (SIGSTOP) while the change stream is trimmed past its
cursor notices the gap when it resumes and rebuilds before answering: 0 stale matches in 200
probes of a case withdrawn during the pause, and nothing added during the pause is missed."""

from __future__ import annotations

import os
import random
import signal
from pathlib import Path

import httpx
import redis

from hashsvc.config import Settings
from hashsvc.embedded import EmbeddedRedis
from hashsvc.store import keys
from tests.helpers import UNTHROTTLED, balanced_pdq, bearer, make_platform
from tests.live import start_service
from tests.security.served_api import ServedApi

RETENTION = 10
CASES_DURING_PAUSE = 300  # far past the retention, and past Redis's 100-entry stream nodes


def test_r7b_paused_process_rebuilds_after_the_stream_moved_past_it(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path / "redis").start()
    settings = Settings(
        redis_url=server.url,
        data_dir=tmp_path / "var",
        change_stream_retention=RETENTION,
        **UNTHROTTLED,
    )
    writer = start_service(settings, server.url)
    paused = ServedApi(
        server.url,
        tmp_path / "paused",
        env={
            "HASHSVC_CHANGE_STREAM_RETENTION": str(RETENTION),
            "HASHSVC_SCAN_RATE_PER_S": "1000000",
            "HASHSVC_SCAN_BURST": "1000000",
        },
    )
    rng = random.Random(7)
    try:
        api_key = make_platform(settings, server.url, "P")
        with (
            httpx.Client(base_url=writer.url, timeout=10) as w,
            httpx.Client(base_url=paused.url, timeout=10) as p,
        ):

            def submit() -> tuple[dict[str, str], list[dict[str, object]]]:
                hashes: list[dict[str, object]] = [
                    {"signal": "pdq", "hash": balanced_pdq(rng), "quality": 100}
                ]
                created = w.post("/v1/cases", json={"hashes": hashes})
                assert created.status_code == 201, created.text
                return created.json(), hashes

            def matched(hashes: list[dict[str, object]]) -> bool:
                probe = [{"signal": "pdq", "hash": hashes[0]["hash"]}]
                scan = p.post("/v1/scan", json={"hashes": probe}, headers=bearer(api_key))
                assert scan.status_code == 200, scan.text
                return bool(scan.json()["matched"])

            victim, victim_hashes = submit()
            assert matched(victim_hashes)  # the paused process holds the case

            os.kill(paused.pid, signal.SIGSTOP)
            try:
                gone = w.delete(f"/v1/cases/{victim['case_id']}", headers=bearer(victim["secret"]))
                assert gone.status_code == 204
                added = [submit()[1] for _ in range(CASES_DURING_PAUSE)]
                with redis.Redis.from_url(server.url) as r:
                    # Trimmed: the victim's add and withdrawal are among the entries gone.
                    assert r.xlen(keys.CHANGES) < CASES_DURING_PAUSE
            finally:
                os.kill(paused.pid, signal.SIGCONT)

            stale = sum(matched(victim_hashes) for _ in range(200))
            assert stale == 0
            assert all(matched(hashes) for hashes in (added[0], added[150], added[-1]))
            assert "rebuilding" in paused.logs()  # the gap was detected, not slept through
    finally:
        paused.stop()
        writer.stop()
        server.stop()
