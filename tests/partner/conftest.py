"""Partner feed fixtures: platform keys with the feed scope, cases submitted and withdrawn
through the real API, the bank as Redis holds it, the feed followed page by page, the
platform's own Redis and `hashsvc` commands (sync, scan-local, ...) run as processes."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from hashsvc.config import Settings
from hashsvc.embedded import EmbeddedRedis
from hashsvc.platforms import register_platform
from hashsvc.store import Store, keys
from tests.helpers import balanced_pdq, bearer
from tests.live import LiveService

Pair = tuple[str, str]  # (signal, lowercase hex)


def make_platform_key(settings: Settings, redis_url: str, *scopes: str) -> str:
    async def create() -> str:
        store = Store.open(redis_url)
        try:
            created = await register_platform("Partner", settings, store, scopes=scopes)
            return created.api_key
        finally:
            await store.close()

    return asyncio.run(create())


@pytest.fixture
def feed_key(settings: Settings, redis_url: str) -> str:
    return make_platform_key(settings, redis_url, "feed")


def balanced_phash(rng: random.Random) -> str:
    bits = [1] * 32 + [0] * 32
    rng.shuffle(bits)
    return int("".join(map(str, bits)), 2).to_bytes(8, "big").hex()


@dataclass
class Bank:
    """Cases submitted and withdrawn through the API; ``live`` is what must remain."""

    client: httpx.Client
    rng: random.Random = field(default_factory=lambda: random.Random(6))
    cases: dict[str, str] = field(default_factory=dict)  # case id -> secret

    def submit(self, pdq: int = 2, phash: int = 1) -> str:
        hashes = [
            {"signal": "pdq", "hash": balanced_pdq(self.rng), "quality": 90} for _ in range(pdq)
        ]
        hashes += [{"signal": "phash", "hash": balanced_phash(self.rng)} for _ in range(phash)]
        answer = self.client.post("/v1/cases", json={"hashes": hashes})
        assert answer.status_code == 201, answer.text
        body = answer.json()
        self.cases[body["case_id"]] = body["secret"]
        return str(body["case_id"])

    def withdraw(self, case_id: str) -> None:
        answer = self.client.delete(f"/v1/cases/{case_id}", headers=bearer(self.cases[case_id]))
        assert answer.status_code in (200, 204), answer.text
        del self.cases[case_id]


@pytest.fixture
def bank(client: httpx.Client) -> Bank:
    return Bank(client)


def bank_pairs(redis_url: str) -> set[Pair]:
    """The server's bank, read straight from Redis."""
    with redis.Redis.from_url(redis_url, decode_responses=True) as r:
        return {
            (signal, code)
            for signal in ("pdq", "phash")
            for code in r.hgetall(keys.bank(signal)).values()
        }


def internal_ids(redis_url: str) -> set[str]:
    with redis.Redis.from_url(redis_url, decode_responses=True) as r:
        return {i for signal in ("pdq", "phash") for i in r.hkeys(keys.bank(signal))}


def snapshot(client: httpx.Client, key: str, limit: int = 1000) -> tuple[list[Any], str, int]:
    """Every snapshot page: items, resume cursor, number of pages."""
    first = client.get("/v1/hashes/snapshot", params={"limit": limit}, headers=bearer(key))
    assert first.status_code == 200, first.text
    items, resume, page, pages = first.json()["items"], first.json()["resume_cursor"], first, 1
    assert resume is not None
    while page.json()["next_page"] is not None:
        params = {"limit": limit, "page": page.json()["next_page"]}
        page = client.get("/v1/hashes/snapshot", params=params, headers=bearer(key))
        assert page.status_code == 200, page.text
        assert page.json()["resume_cursor"] is None
        assert len(page.json()["items"]) <= limit
        items += page.json()["items"]
        pages += 1
    return items, resume, pages


def follow(
    client: httpx.Client, key: str, cursor: str, limit: int = 1000
) -> tuple[list[dict[str, Any]], str]:
    """Every feed change after ``cursor`` and the cursor at the head."""
    changes: list[dict[str, Any]] = []
    while True:
        page = client.get(
            "/v1/hashes/feed", params={"cursor": cursor, "limit": limit}, headers=bearer(key)
        )
        assert page.status_code == 200, page.text
        assert len(page.json()["changes"]) <= limit
        changes += page.json()["changes"]
        cursor = page.json()["next_cursor"]
        if not page.json()["has_more"]:
            return changes, cursor


def apply(replica: dict[str, Pair], changes: list[dict[str, Any]]) -> None:
    """What a consumer does with feed changes."""
    for change in changes:
        if change["op"] == "add":
            replica[change["id"]] = (change["signal"], change["hash"])
        else:
            assert "hash" not in change  # a tombstone carries no hash
            replica.pop(change["id"], None)


ROOT = Path(__file__).resolve().parents[2]
PREFIX = keys.REPLICA_PREFIX


@pytest.fixture
def platform_redis(tmp_path: Path) -> Iterator[str]:
    """The platform's own Redis, apart from the service's."""
    server = EmbeddedRedis(tmp_path / "platform-redis", appendfsync="everysec").start()
    yield server.url
    server.stop()


def env(tmp_path: Path, **extra: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("HASHSVC_")}
    clean.pop("REDIS_URL", None)
    return {**clean, "HASHSVC_DATA_DIR": str(tmp_path / "cli-data"), **extra}


def hashsvc(tmp_path: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hashsvc", *args],
        cwd=ROOT,
        env=env(tmp_path, **extra),
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


class Consumer:
    """`hashsvc sync` for one server, key and platform Redis."""

    def __init__(self, tmp_path: Path, server: str, key: str, replica_url: str) -> None:
        self.tmp_path = tmp_path
        self.args = ["sync", "--server", server, "--redis-url", replica_url]
        self.key = key
        self.replica_url = replica_url

    def once(self, *extra: str) -> str:
        done = hashsvc(self.tmp_path, *self.args, "--once", *extra, HASHSVC_FEED_API_KEY=self.key)
        assert done.returncode == 0, done.stderr
        return done.stdout + done.stderr

    def start(self, *extra: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "hashsvc", *self.args, "--interval", "0.2", *extra],
            cwd=ROOT,
            env=env(self.tmp_path, HASHSVC_FEED_API_KEY=self.key),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def state(self) -> dict[str, str]:
        with redis.Redis.from_url(self.replica_url, decode_responses=True) as r:
            state: dict[str, str] = r.hgetall(keys.replica_state(PREFIX))
            return state

    def replica(self) -> dict[str, Pair]:
        """The synced bank: feed id -> (signal, hex)."""
        with redis.Redis.from_url(self.replica_url, decode_responses=True) as r:
            return {
                hash_id: (signal, code)
                for signal in ("pdq", "phash")
                for hash_id, code in r.hgetall(keys.replica_bank(PREFIX, signal)).items()
            }

    def kill_when(self, process: subprocess.Popen[bytes], ready: Callable[[], bool]) -> None:
        """SIGKILL the consumer as soon as ``ready`` holds (polled every few ms)."""
        deadline = time.monotonic() + 60
        while not ready():
            assert process.poll() is None, "the consumer exited"
            assert time.monotonic() < deadline, "never reached the point to kill at"
            time.sleep(0.003)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)


@pytest.fixture
def consumer(tmp_path: Path, service: LiveService, feed_key: str, platform_redis: str) -> Consumer:
    return Consumer(tmp_path, service.url, feed_key, platform_redis)
