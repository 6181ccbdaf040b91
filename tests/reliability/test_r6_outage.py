"""R6: a Redis outage fails closed and everything recovers without a restart.

With Redis down the API answers 503 + Retry-After within 2 s (no hang, no 500) and
acknowledges nothing; /readyz turns 503; when Redis returns, the API, its index replicas and a
running worker resume by themselves."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from hashsvc.config import Settings
from hashsvc.embedded import EmbeddedRedis
from tests.helpers import (
    PHOTOS,
    UNTHROTTLED,
    bearer,
    make_platform,
    reupload,
    upload,
    victim_hashes,
)
from tests.live import start_service
from tests.workers.conftest import Workers, wait_finished, wait_for


def test_r6_outage_fails_closed_and_recovers(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path / "redis").start()
    settings = Settings(
        redis_url=server.url, data_dir=tmp_path / "var", worker_sweep_interval_s=0.2, **UNTHROTTLED
    )
    api = start_service(settings, server.url)
    (tmp_path / "logs").mkdir()
    workers = Workers(server.url, tmp_path / "logs")
    try:
        api_key = make_platform(settings, server.url, "P")
        workers.start()
        workers.wait_ready()
        with httpx.Client(base_url=api.url, timeout=10) as client:
            case = {"hashes": victim_hashes(PHOTOS["coffee"], settings)}
            assert client.post("/v1/cases", json=case).status_code == 201
            assert client.get("/readyz").status_code == 200

            server.kill()
            outage: list[tuple[int, float, str | None]] = []
            for _ in range(10):
                for method, path, kwargs in (
                    ("POST", "/v1/cases", {"json": case}),
                    ("POST", "/v1/scan", {"files": upload(reupload("coffee"))}),
                    ("GET", "/readyz", {}),
                ):
                    headers = bearer(api_key) if path == "/v1/scan" else {}
                    start = time.monotonic()
                    response = client.request(method, path, headers=headers, **kwargs)
                    outage.append(
                        (
                            response.status_code,
                            time.monotonic() - start,
                            response.headers.get("Retry-After"),
                        )
                    )

            assert {status for status, _, _ in outage} == {503}
            assert max(elapsed for _, elapsed, _ in outage) <= 2.0
            assert all(retry_after for _, _, retry_after in outage)

            server.start()
            back = time.monotonic()
            wait_for(lambda: client.get("/readyz").status_code == 200, timeout=5)
            assert time.monotonic() - back <= 5.0
            scan = client.post(
                "/v1/scan", files=upload(reupload("coffee")), headers=bearer(api_key)
            )
            assert scan.json()["matched"] is True
            job = client.post(
                "/v1/scan/jobs", files=upload(reupload("coffee")), headers=bearer(api_key)
            )
            job_id = job.json()["job_id"]
            try:
                done = wait_finished(client, api_key, [job_id], timeout=30)[job_id]
            except AssertionError:
                raise AssertionError(workers.logs()[-3000:]) from None
            assert done["matched"] is True
            metrics = client.get("/metrics").text
            ledger = {
                line.split('"')[1]: float(line.rsplit(" ", 1)[1])
                for line in metrics.splitlines()
                if line.startswith("hashsvc_jobs{")
            }
            assert ledger["accepted"] == ledger["done"] + ledger["failed"] + ledger["pending"]
            assert ledger["done"] >= 1
    finally:
        workers.stop_all()
        api.stop()
        server.stop()
