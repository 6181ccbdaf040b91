"""`hashsvc serve --workers 2`: two uvicorn worker processes on the parent's embedded Redis.
Both serve, /metrics adds their counters up, SIGTERM stops every process and the Redis, and a
SIGKILLed parent leaves no worker or Redis behind."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.procfs import cmdline, descendants, free_port, running
from tests.test_service import cli_env, redis_answers

WORKERS = ("--workers", "2")


class Served:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = data_dir.parent / "serve.log"
        data_dir.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "hashsvc", "serve", "--port", str(self.port), *WORKERS],
                env=cli_env(data_dir),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text()
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        pytest.fail(f"not ready:\n{self.log.read_text()}")

    def descendants(self) -> list[int]:
        return descendants(self.process.pid)

    def request_lines(self) -> list[dict[str, object]]:
        entries = [json.loads(line) for line in self.log.read_text().splitlines() if line]
        return [e for e in entries if e.get("logger") == "hashsvc.request"]


def alive_after(pids: list[int], timeout_s: float) -> list[int]:
    deadline = time.monotonic() + timeout_s
    while any(running(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    return [p for p in pids if running(p)]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    server = Served(tmp_path / "serve" / "var")
    started = [server.process.pid, *server.descendants()]
    yield server
    for pid in [*started, *server.descendants()]:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    server.process.wait(30)  # reaped: no ResourceWarning surfacing in a later test


def test_two_workers_serve_and_stop_cleanly(served: Served) -> None:
    served.wait_ready()

    def worker_pids() -> list[int]:
        return [p for p in served.descendants() if "spawn_main" in cmdline(p)]

    deadline = time.monotonic() + 60  # uvicorn starts its workers one after the other
    while len(worker_pids()) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    workers = worker_pids()
    assert len(workers) == 2

    def probe(_: int) -> int:
        with httpx.Client(timeout=10) as fresh:  # a new connection each time
            return fresh.get(f"{served.url}/healthz").status_code

    pids: set[int] = set()
    probes = 0
    deadline = time.monotonic() + 60  # until both workers have answered (one may start late)
    with ThreadPoolExecutor(8) as pool:
        while pids != set(workers) and time.monotonic() < deadline:
            assert set(pool.map(probe, range(100))) == {200}
            probes += 100
            lines = served.request_lines()
            pids = {int(str(e["pid"])) for e in lines if e["route"] == "/healthz"}
    assert pids == set(workers), "both worker processes answer"

    text = httpx.get(f"{served.url}/metrics", timeout=10).text
    healthz = [
        line
        for line in text.splitlines()
        if line.startswith(
            'hashsvc_http_requests_total{method="GET",route="/healthz",status="200"}'
        )
    ]
    assert len(healthz) == 1
    assert float(healthz[0].split()[-1]) >= probes, "the counters of both workers are added up"

    everything = served.descendants()
    served.process.send_signal(signal.SIGTERM)
    assert served.process.wait(60) == 0
    assert alive_after(everything, 10) == []
    assert not redis_answers(served.data_dir / "redis.sock")
    assert not list(Path("/tmp").glob(f"hashsvc-metrics-*/*_{workers[0]}.db"))


def test_killed_parent_leaves_no_worker_and_no_redis(served: Served) -> None:
    served.wait_ready()
    everything = served.descendants()
    assert len(everything) >= 3  # Redis and 2 workers (plus uvicorn's resource tracker)
    served.process.kill()
    served.process.wait()
    assert [cmdline(p) for p in alive_after(everything, 30)] == []
    assert not redis_answers(served.data_dir / "redis.sock")
