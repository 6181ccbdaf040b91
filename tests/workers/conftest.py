"""Worker fixtures: real `python -m workers --one` processes on the test Redis, and helpers to
queue jobs through the real API and wait for them."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from hashsvc.config import Settings

WORKER_ENV = {
    "HASHSVC_WORKER_VISIBILITY_TIMEOUT_S": "1.5",
    "HASHSVC_WORKER_SWEEP_INTERVAL_S": "0.2",
    "HASHSVC_JOB_MAX_DELIVERIES": "3",
    "HASHSVC_VIDEO_MIN_MATCHING_FRAMES": "2",
}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The API process uses the same job settings as the workers."""
    return settings.model_copy(
        update={
            "worker_visibility_timeout_s": 1.5,
            "worker_sweep_interval_s": 0.2,
            "job_max_deliveries": 3,
        }
    )


class Workers:
    """Worker processes started by a test; every one is stopped at the end."""

    def __init__(self, redis_url: str, log_dir: Path) -> None:
        self.redis_url = redis_url
        self.log_dir = log_dir
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, memory_limit: int | None = None) -> subprocess.Popen[bytes]:
        """A worker process; ``memory_limit`` (bytes of address space) makes big jobs fail."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("HASHSVC_")}
        env.update(WORKER_ENV, REDIS_URL=self.redis_url)

        def limit_memory() -> None:
            if memory_limit is not None:
                resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))

        log = self.log_dir / f"worker-{len(self.processes)}.log"
        with log.open("wb") as stderr:  # kept for the failure report (see logs())
            process = subprocess.Popen(
                [sys.executable, "-m", "workers", "--one"],
                env=env,
                preexec_fn=limit_memory,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )
        self.processes.append(process)
        return process

    def wait_ready(self, count: int = 1, timeout: float = 30.0) -> None:
        """Until ``count`` workers have logged that they serve jobs."""
        wait_for(lambda: self.logs().count(" ready") >= count, timeout=timeout)

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.log_dir.glob("*.log")))

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def wait_for(condition: Callable[[], bool], timeout: float = 60.0, interval: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(interval)


def job_status(client: httpx.Client, api_key: str, job_id: str) -> dict[str, Any]:
    response = client.get(f"/v1/scan/jobs/{job_id}", headers={"Authorization": f"Bearer {api_key}"})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def wait_finished(
    client: httpx.Client, api_key: str, job_ids: list[str], timeout: float = 120.0
) -> dict[str, dict[str, Any]]:
    """Poll until every job is done or failed; returns the final statuses."""
    final: dict[str, dict[str, Any]] = {}

    def all_finished() -> bool:
        for job_id in job_ids:
            if job_id not in final:
                status = job_status(client, api_key, job_id)
                if status["status"] in ("done", "failed"):
                    final[job_id] = status
        return len(final) == len(job_ids)

    wait_for(all_finished, timeout=timeout, interval=0.2)
    return final
