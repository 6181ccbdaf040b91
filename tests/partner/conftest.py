"""Partner feed fixtures: platform keys with the feed scope, cases submitted and withdrawn
through the real API, the bank as Redis holds it, and the feed followed page by page."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import redis

from hashsvc.config import Settings
from hashsvc.platforms import register_platform
from hashsvc.store import Store, keys
from tests.helpers import balanced_pdq, bearer

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
