"""R2: workers SIGKILLed while they own jobs lose nothing and duplicate nothing.
R7: index replicas in every process follow withdrawals at once, and Redis restarts."""

from __future__ import annotations

import os
import random
import signal
import time
from collections import Counter
from functools import partial
from pathlib import Path

import httpx
import pytest
import redis

from fixtures.make_variants import encode, load_photo
from hashsvc.config import Settings
from hashsvc.embedded import EmbeddedRedis
from hashsvc.store import keys
from hashsvc.store.client import text, text_map
from tests.helpers import (
    PHOTOS,
    UNTHROTTLED,
    all_flags,
    bearer,
    make_platform,
    reupload,
    upload,
    victim_hashes,
)
from tests.live import start_service
from tests.workers.conftest import Workers, wait_finished, wait_for


def medium(name: str) -> bytes:
    """An upload that takes a few hundred milliseconds to decode and hash."""
    return encode(load_photo(PHOTOS[name]).convert("RGB").resize((2400, 1800)), "JPEG")


def is_dead(pid: int) -> bool:
    """Gone, or a zombie waiting to be reaped: it can no longer touch Redis."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z")
    except (FileNotFoundError, IndexError):
        return True


def kill_an_owner(r: redis.Redis, spared: set[str]) -> tuple[str, str] | None:
    """SIGKILL a live worker process owning a pending job that was not hit before (a job
    killed on every delivery is rightly dead-lettered); returns (job id, its consumer)."""
    for entry in r.xpending_range(keys.JOBS, keys.JOBS_GROUP, "-", "+", 10):
        consumer = text(entry["consumer"])
        pid = int(consumer.rsplit("-", 2)[1])  # consumer names are host-pid-random
        entries = r.xrange(keys.JOBS, entry["message_id"], entry["message_id"])
        if not entries or is_dead(pid) or text_map(entries[0][1])["job_id"] in spared:
            continue
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            continue
        wait_for(partial(is_dead, pid), timeout=5, interval=0.01)  # the kill is asynchronous
        entry_id = entry["message_id"]
        if not r.xpending_range(keys.JOBS, keys.JOBS_GROUP, entry_id, entry_id, 1):
            return None  # it committed just before dying: this kill missed the job
        return text_map(entries[0][1])["job_id"], consumer
    return None


# A hang guard, not a speed target: 120 image jobs with upload-side views take ~1.5 min on
# 2 busy cores, close to the suite's 120 s default.
@pytest.mark.timeout(420)
def test_r2_killed_workers_lose_and_duplicate_nothing(
    client: httpx.Client,
    settings: Settings,
    api_key: str,
    workers: Workers,
    redis_url: str,
    full_chaos: bool,
) -> None:
    # The plan's figures in the full form (make chaos): 300 jobs, 10 kills.
    count, kills = (300, 10) if full_chaos else (120, 5)
    client.post("/v1/cases", json={"hashes": victim_hashes(PHOTOS["coffee"], settings)})
    workers.start()
    workers.start()
    workers.wait_ready(2)
    uploads = {"coffee": medium("coffee"), "rocket": medium("rocket")}
    plan = ["coffee" if i % 3 == 0 else "rocket" for i in range(count)]
    job_ids = []
    for name in plan:
        response = client.post(
            "/v1/scan/jobs", files=upload(uploads[name]), headers=bearer(api_key)
        )
        job_ids.append(response.json()["job_id"])
    rng, hit_jobs = random.Random(3), list[tuple[str, str]]()
    with redis.Redis.from_url(redis_url) as r:
        for _ in range(2 * kills):  # aimed kills; a miss is retried a few times
            time.sleep(rng.uniform(0.7, 1.5))
            hit = kill_an_owner(r, {job for job, _ in hit_jobs})
            if hit is not None:
                hit_jobs.append(hit)
                workers.start()  # a replacement with a new consumer name
            if len(hit_jobs) == kills:
                break

    final = wait_finished(client, api_key, job_ids, timeout=300 if full_chaos else 240)

    assert len(hit_jobs) >= kills - 1  # vacuity guard: the kills hit jobs in flight
    with redis.Redis.from_url(redis_url, decode_responses=True) as r:
        finished_by = {job: r.hget(keys.job(job), "worker") for job, _ in hit_jobs}
    assert all(finished_by[job] != killed for job, killed in hit_jobs), (finished_by, hit_jobs)
    assert all(s["status"] == "done" for s in final.values())
    assert [final[j]["matched"] for j in job_ids] == [name == "coffee" for name in plan]
    flags = all_flags(client, api_key)
    per_job = Counter(f["job_id"] for f in flags)
    assert set(per_job) == {j for j, name in zip(job_ids, plan, strict=True) if name == "coffee"}
    assert max(per_job.values()) == 1
    with redis.Redis.from_url(redis_url) as r:
        pending = r.xpending(keys.JOBS, keys.JOBS_GROUP)["pending"]
        assert pending == 0
        assert r.xlen(keys.JOBS) == 0
    done = sum(s["status"] == "done" for s in final.values())
    print(
        f"\nR2 ledger: {len(job_ids)} accepted, {done} done, {len(job_ids) - done} lost, "
        f"{sum(per_job.values()) - len(per_job)} duplicated flags, {len(hit_jobs)} of {kills} "
        f"kills hit a job in flight (all {len(hit_jobs)} recovered by another worker), "
        f"{pending} pending"
    )


def test_r7_replicas_follow_withdrawals_and_redis_restarts(
    tmp_path: Path, full_chaos: bool
) -> None:
    server = EmbeddedRedis(tmp_path / "redis").start()
    settings = Settings(redis_url=server.url, data_dir=tmp_path / "var", **UNTHROTTLED)
    services = [start_service(settings, server.url) for _ in range(2)]
    try:
        api_key = make_platform(settings, server.url, "P")
        image = upload(reupload("chelsea"))
        clients = [httpx.Client(base_url=s.url, timeout=10) for s in services]
        for _ in range(50 if full_chaos else 10):  # (a) withdraw, probe all every 50 ms for 1 s
            created = (
                clients[0]
                .post("/v1/cases", json={"hashes": victim_hashes(PHOTOS["chelsea"], settings)})
                .json()
            )
            for client in clients:
                assert client.post("/v1/scan", files=image, headers=bearer(api_key)).json()[
                    "matched"
                ]
            deleted = clients[1].delete(
                f"/v1/cases/{created['case_id']}", headers=bearer(created["secret"])
            )
            assert deleted.status_code == 204
            deadline = time.monotonic() + 1.0
            while time.monotonic() < deadline:
                for client in clients:
                    scan = client.post("/v1/scan", files=image, headers=bearer(api_key))
                    assert scan.json()["matched"] is False
                time.sleep(0.05)

        clients[0].post("/v1/cases", json={"hashes": victim_hashes(PHOTOS["rocket"], settings)})
        server.kill()  # (c) Redis restarts: every index equals Redis's count within 5 s
        time.sleep(0.5)
        server.start()
        with redis.Redis.from_url(server.url) as r:
            expected = {"pdq": r.hlen(keys.bank("pdq")), "phash": r.hlen(keys.bank("phash"))}
        assert expected == {"pdq": 1, "phash": 1}

        def converged() -> bool:
            ready = [c.get("/readyz") for c in clients]
            return all(r.status_code == 200 and r.json()["index"] == expected for r in ready)

        wait_for(converged, timeout=5)
        for client in clients:
            client.close()
    finally:
        for service in services:
            service.stop()
        server.stop()
