"""Run scan workers: one asyncio worker per process (``run_one``), N processes supervised by
``run_many``, which restarts a crashed child and forwards SIGTERM/SIGINT for a clean drain."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import uuid

from hashsvc.config import Settings
from hashsvc.errors import HashsvcError
from hashsvc.store import Store
from workers.scan_worker import ScanWorker

logger = logging.getLogger(__name__)

_RESTART_DELAY_S = 1.0


def consumer_name() -> str:
    """Unique per process and per start: a restarted worker never reuses a dead one's name."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


async def _serve(settings: Settings, redis_url: str) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    store = Store.open(redis_url)
    try:
        await ScanWorker(settings, store, consumer_name()).run(stop)
    finally:
        await store.close()


def run_one(settings: Settings, redis_url: str) -> None:
    """One worker in this process, until SIGTERM or SIGINT (or a refusal to run, such as a
    Redis without persistence in production mode, which exits with status 2)."""
    try:
        asyncio.run(_serve(settings, redis_url))
    except HashsvcError as exc:
        logger.error("%s", exc.message)
        sys.exit(2)


def _spawn(redis_url: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "REDIS_URL": redis_url}
    return subprocess.Popen([sys.executable, "-m", "workers", "--one"], env=env)


def run_many(processes: int, redis_url: str) -> None:
    """Start ``processes`` worker processes and keep them running until told to stop."""
    stopping = False

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)

    children = [_spawn(redis_url) for _ in range(processes)]
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while not stopping:
        for number, child in enumerate(children):
            if child.poll() is not None and not stopping:
                logger.warning("worker pid %d exited (%s); restarting", child.pid, child.returncode)
                time.sleep(_RESTART_DELAY_S)
                children[number] = _spawn(redis_url)
        time.sleep(0.2)
    for child in children:
        child.wait()
