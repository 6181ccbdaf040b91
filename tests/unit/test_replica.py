"""Index replicas against a real Redis: built from the bank, caught up from the change stream,
rebuilt when the stream no longer continues from their cursor."""

from __future__ import annotations

import asyncio

import numpy as np
import redis

from hashsvc.matching import ReplicaSet
from hashsvc.models import HashEntry
from hashsvc.signals import SIGNALS
from hashsvc.store import Store, keys


def code(seed: int) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, 32, dtype=np.uint8).tobytes()


def contains(replicas: ReplicaSet, value: bytes) -> bool:
    query = np.frombuffer(value, dtype=np.uint8).reshape(1, -1)
    _, ids, _ = replicas.index("pdq").search(query, 0)
    return len(ids) > 0


def test_replica_follows_adds_and_withdrawals(redis_url: str) -> None:
    async def scenario() -> None:
        store = Store.open(redis_url)
        try:
            await store.cases.create("case_a" + "A" * 17, "v", [HashEntry("pdq", code(1))])
            replicas = ReplicaSet(store.changes, SIGNALS)
            await replicas.bootstrap()
            assert contains(replicas, code(1))
            await store.cases.create("case_b" + "B" * 17, "v", [HashEntry("pdq", code(2))])
            assert not contains(replicas, code(2))
            await replicas.catch_up()
            assert contains(replicas, code(2))
            await store.cases.withdraw("case_a" + "A" * 17)
            await replicas.catch_up()
            assert not contains(replicas, code(1))
            assert len(replicas.index("pdq")) == 1
        finally:
            await store.close()

    asyncio.run(scenario())


def test_replica_rebuilds_when_the_stream_is_replaced(redis_url: str) -> None:
    """A restore from an older backup: the stream's entries are older than the cursor."""

    async def scenario() -> None:
        store = Store.open(redis_url)
        try:
            await store.cases.create("case_c" + "C" * 17, "v", [HashEntry("pdq", code(3))])
            replicas = ReplicaSet(store.changes, SIGNALS)
            await replicas.bootstrap()
            with redis.Redis.from_url(redis_url) as r:
                r.flushall()
                r.hset(keys.bank("pdq"), "7", code(4).hex())
                r.hset(keys.BANK_OWNER, "7", "case_restored")
                fields = {"op": "add", "signal": "pdq", "id": 7, "code": code(4).hex()}
                r.xadd(keys.CHANGES, fields, id="1-1")
            await asyncio.sleep(1.1)  # the continuity check runs at most once a second
            await replicas.catch_up()
            assert contains(replicas, code(4))
            assert not contains(replicas, code(3))
        finally:
            await store.close()

    asyncio.run(scenario())
