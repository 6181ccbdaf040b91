"""Index replicas against a real Redis: built from the bank, caught up from the change stream,
rebuilt when the stream no longer continues from their cursor."""

from __future__ import annotations

import asyncio

import numpy as np
import redis

from hashsvc.matching import ReplicaSet
from hashsvc.models import Change, HashEntry
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
            await replicas.catch_up()
            assert contains(replicas, code(4))
            assert not contains(replicas, code(3))
        finally:
            await store.close()

    asyncio.run(scenario())


def test_replica_left_behind_by_trimming_rebuilds_before_answering(redis_url: str) -> None:
    """R7(b) in-process: a replica that did not read the stream while it was trimmed past its
    cursor (a paused process) notices at its next lookup and rebuilds: a case withdrawn in the
    gap never matches again, and nothing added in the gap is missed."""

    async def scenario() -> None:
        store = Store.open(redis_url, change_retention=10)
        try:
            withdrawn = "case_w" + "W" * 17
            await store.cases.create(withdrawn, "v", [HashEntry("pdq", code(10))])
            paused = ReplicaSet(store.changes, SIGNALS)
            await paused.bootstrap()
            await paused.catch_up()  # a lookup just before the pause
            assert contains(paused, code(10))
            await store.cases.withdraw(withdrawn)
            for n in range(300):  # far past the retained range
                await store.cases.create(
                    f"case_{n:04d}" + "N" * 13, "v", [HashEntry("pdq", code(100 + n))]
                )
            with redis.Redis.from_url(redis_url) as r:
                assert r.xlen(keys.CHANGES) < 301  # really trimmed
            for _ in range(200):
                await paused.catch_up()
                assert not contains(paused, code(10))
            assert paused.rebuilds == 1
            assert len(paused.index("pdq")) == 300
            assert all(contains(paused, code(100 + n)) for n in (0, 150, 299))
        finally:
            await store.close()

    asyncio.run(scenario())


def test_concurrent_catch_ups_see_what_was_committed_before_they_were_called(
    redis_url: str,
) -> None:
    """Catch-ups share rounds; whatever else is in flight, a change committed before
    ``catch_up()`` is called is in the replica when it returns."""

    async def scenario() -> None:
        store = Store.open(redis_url)
        try:
            replicas = ReplicaSet(store.changes, SIGNALS)
            await replicas.bootstrap()
            reads = 0
            since = store.changes.since

            async def counted(cursor: str, count: int = 10_000) -> tuple[list[Change], str]:
                nonlocal reads
                reads += 1
                return await since(cursor, count)

            store.changes.since = counted  # type: ignore[method-assign]  # counts, then reads
            for n in range(30):
                in_flight = [asyncio.ensure_future(replicas.catch_up()) for _ in range(n % 4)]
                await asyncio.sleep(0)  # let those rounds start reading
                case_id = f"case_round{n:013d}"
                await store.cases.create(case_id, "v", [HashEntry("pdq", code(1000 + n))])
                await replicas.catch_up()
                assert contains(replicas, code(1000 + n)), n
                await asyncio.gather(*in_flight)
            reads = 0
            await asyncio.gather(*(replicas.catch_up() for _ in range(100)))
            assert reads <= 2  # one round for all (two if one had started)
        finally:
            await store.close()

    asyncio.run(scenario())
