"""R4 (quick form): poison jobs go to the dead letters with their reason, good jobs keep flowing,
and the worker process survives, because media is decoded in sandboxed child processes.

Three poisons: a corrupt file (fails at once: the same bytes would fail again), a crasher (the
decode child aborts, through the sandbox's test hook: no real input crashes our decoders) and
a hang (past the sandbox's wall-clock timeout). Crashes and hangs may be transient, so they
are retried and dead-lettered at the third delivery; no job is delivered more than three
times."""

from __future__ import annotations

import httpx
import pytest
import redis

from fixtures.hostile import truncated_jpeg
from fixtures.make_variants import encode, load_photo
from hashsvc.sandbox import CRASH_MARKER_ENV
from hashsvc.store import keys
from tests.helpers import PHOTOS, bearer, reupload, upload
from tests.workers import conftest as worker_conftest
from tests.workers.conftest import Workers, wait_finished

SANDBOX_TIMEOUT_S = 1.5
CRASH_MARKER = "r4-crash-marker-3f9c"
GOOD_JOBS = 20


def enqueue(client: httpx.Client, api_key: str, data: bytes) -> str:
    response = client.post("/v1/scan/jobs", files=upload(data), headers=bearer(api_key))
    assert response.status_code == 202, response.text
    job_id: str = response.json()["job_id"]
    return job_id


def slow_photo() -> bytes:
    """A 49 Mpx JPEG (1.8 MB): within every size limit, but hashing it takes about 4 s."""
    image = load_photo(PHOTOS["rocket"]).convert("RGB").resize((7000, 7000))
    return encode(image, "JPEG", quality=85)


def test_r4_poison_jobs_fail_good_jobs_flow_worker_survives(
    client: httpx.Client,
    api_key: str,
    workers: Workers,
    redis_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(
        worker_conftest.WORKER_ENV, "HASHSVC_SANDBOX_TIMEOUT_S", str(SANDBOX_TIMEOUT_S)
    )
    monkeypatch.setitem(worker_conftest.WORKER_ENV, CRASH_MARKER_ENV, CRASH_MARKER)
    worker = workers.start()
    names = sorted(PHOTOS)
    good_data = [reupload(names[n % len(names)]) for n in range(GOOD_JOBS)]
    good = [enqueue(client, api_key, data) for data in good_data[:10]]
    corrupt = enqueue(client, api_key, truncated_jpeg(reupload("coffee")))
    crasher = enqueue(client, api_key, reupload("chelsea") + CRASH_MARKER.encode())
    hang = enqueue(client, api_key, slow_photo())
    good += [enqueue(client, api_key, data) for data in good_data[10:]]

    final = wait_finished(client, api_key, [*good, corrupt, crasher, hang], timeout=120)

    assert [final[job]["status"] for job in good] == ["done"] * GOOD_JOBS
    assert final[corrupt]["status"] == "failed"
    assert final[corrupt]["attempts"] == 1
    assert final[corrupt]["error"].startswith("corrupt")
    assert final[crasher]["status"] == "failed"
    assert final[crasher]["attempts"] == 3
    assert final[crasher]["error"].startswith("gave up after 3 attempts: decoder_crashed")
    assert "SIGABRT" in final[crasher]["error"]
    assert final[hang]["status"] == "failed"
    assert final[hang]["attempts"] == 3
    # 49 Mpx sits at two sandbox limits: hashing it takes ~4 s and ~1.5 GB, so an attempt
    # ends at the wall-clock timeout or, on a busy machine, at the memory limit first.
    hang_error = final[hang]["error"]
    assert hang_error.startswith("gave up after 3 attempts: ")
    assert f"decoder_timeout: decoding took longer than {SANDBOX_TIMEOUT_S:g} s" in hang_error or (
        "SandboxOutOfMemory" in hang_error
    ), hang_error
    with redis.Redis.from_url(redis_url, decode_responses=True) as r:
        dead = {e[1]["job_id"]: e[1] for e in r.xrange(keys.DEAD_JOBS)}
    assert set(dead) == {corrupt, crasher, hang}
    deliveries = {job: int(dead[job]["deliveries"]) for job in dead}
    assert deliveries == {corrupt: 1, crasher: 3, hang: 3}  # never more than 3
    assert worker.poll() is None, workers.logs()  # the worker process never died
    assert " ready" in workers.logs()
