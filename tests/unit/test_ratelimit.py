"""The GCRA rate limiter against a real Redis: bursts, refill in real time, isolation between
subjects and buckets, atomicity under concurrency, one budget across clients, bounded keys."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from hashsvc.store import Store, keys
from hashsvc.store.client import connect, text
from hashsvc.store.ratelimit import MIN_TTL_MS, Rate, RateLimiter

SLOW = Rate(per_second=0.01, burst=5)  # no measurable refill during a test

Scenario = Callable[[RateLimiter, Redis], Awaitable[None]]


def run(redis_url: str, scenario: Scenario) -> None:
    async def main() -> None:
        redis = connect(redis_url)
        try:
            await scenario(RateLimiter(redis), redis)
        finally:
            await redis.aclose()

    asyncio.run(main())


def test_burst_then_denied_with_retry_after(redis_url: str) -> None:
    rate = Rate(per_second=1, burst=5)

    async def scenario(limiter: RateLimiter, redis: Redis) -> None:
        for left in range(4, -1, -1):
            decision = await limiter.hit("scan", "p1", rate)
            assert decision.allowed
            assert decision.retry_after_s == 0
            assert decision.remaining == left
        denied = await limiter.hit("scan", "p1", rate)
        assert not denied.allowed
        assert denied.remaining == 0
        assert 0.8 < denied.retry_after_s <= 1.0
        # Denied hits consume nothing: hammering does not push the retry time back.
        for _ in range(20):
            again = await limiter.hit("scan", "p1", rate)
            assert not again.allowed
            assert again.retry_after_s <= denied.retry_after_s

    run(redis_url, scenario)


def test_refills_over_real_time(redis_url: str) -> None:
    rate = Rate(per_second=10, burst=2)  # one request back every 100 ms

    async def scenario(limiter: RateLimiter, redis: Redis) -> None:
        assert (await limiter.hit("scan", "p1", rate)).allowed
        assert (await limiter.hit("scan", "p1", rate)).allowed
        denied = await limiter.hit("scan", "p1", rate)
        assert not denied.allowed
        assert 0 < denied.retry_after_s <= 0.1
        await asyncio.sleep(denied.retry_after_s + 0.005)
        assert (await limiter.hit("scan", "p1", rate)).allowed  # exactly one came back
        assert not (await limiter.hit("scan", "p1", rate)).allowed
        await asyncio.sleep(0.25)  # > burst * interval: the bucket is full again
        assert (await limiter.peek("scan", "p1", rate)).remaining == 2

    run(redis_url, scenario)


def test_subjects_and_buckets_are_independent(redis_url: str) -> None:
    async def scenario(limiter: RateLimiter, redis: Redis) -> None:
        for _ in range(50):  # one noisy platform, far over its limit
            await limiter.hit("scan", "noisy", SLOW)
        assert not (await limiter.peek("scan", "noisy", SLOW)).allowed
        for bucket, subject in [("scan", "quiet"), ("case_create", "noisy"), ("auth_fail", "x")]:
            decision = await limiter.hit(bucket, subject, SLOW)
            assert decision.allowed
            assert decision.remaining == SLOW.burst - 1

    run(redis_url, scenario)


def test_cost_above_one(redis_url: str) -> None:
    rate = Rate(per_second=0.01, burst=10)  # interval 100 s

    async def scenario(limiter: RateLimiter, redis: Redis) -> None:
        assert (await limiter.hit("scan", "p1", rate, cost=4)).remaining == 6
        assert (await limiter.hit("scan", "p1", rate, cost=4)).remaining == 2
        denied = await limiter.hit("scan", "p1", rate, cost=4)
        assert not denied.allowed
        assert denied.remaining == 2  # untouched by the denial
        assert 199 < denied.retry_after_s <= 200  # two more intervals for two more requests
        assert (await limiter.hit("scan", "p1", rate, cost=2)).remaining == 0
        for bad in (0, -1, 11):
            with pytest.raises(ValueError, match="cost"):
                await limiter.hit("scan", "p1", rate, cost=bad)

    run(redis_url, scenario)


def test_peek_consumes_nothing_and_reset_refills(redis_url: str) -> None:
    async def scenario(limiter: RateLimiter, redis: Redis) -> None:
        for _ in range(3):
            peeked = await limiter.peek("auth_fail", "198.51.100.4", SLOW)
            assert peeked.allowed
            assert peeked.remaining == SLOW.burst
        assert await redis.keys(keys.PREFIX + "*") == []  # peeking writes nothing
        for _ in range(SLOW.burst):
            await limiter.hit("auth_fail", "198.51.100.4", SLOW)
        assert not (await limiter.peek("auth_fail", "198.51.100.4", SLOW)).allowed
        await limiter.reset("auth_fail", "198.51.100.4")
        assert (await limiter.peek("auth_fail", "198.51.100.4", SLOW)).remaining == SLOW.burst

    run(redis_url, scenario)


def test_concurrent_hits_are_atomic(redis_url: str) -> None:
    """200 hits in flight at once on 200 connections (4 clients: a client's pool holds 100)."""
    rate = Rate(per_second=0.01, burst=50)

    async def scenario(_: RateLimiter, __: Redis) -> None:
        clients = [connect(redis_url) for _ in range(4)]
        try:
            limiters = [RateLimiter(c) for c in clients]
            decisions = await asyncio.gather(
                *(limiters[i % 4].hit("scan", "p1", rate) for i in range(200))
            )
        finally:
            for client in clients:
                await client.aclose()
        assert sum(d.allowed for d in decisions) == 50
        assert sorted(d.remaining for d in decisions if d.allowed) == list(range(50))

    run(redis_url, scenario)


def test_separate_clients_share_one_budget(redis_url: str) -> None:
    """Two clients with their own connections stand in for two API processes."""

    async def scenario(first: RateLimiter, _: Redis) -> None:
        other_redis = connect(redis_url)
        try:
            second = RateLimiter(other_redis)
            results = []
            for i in range(10):
                limiter = first if i % 2 else second
                results.append((await limiter.hit("case_create", "203.0.113.9", SLOW)).allowed)
            assert results == [True] * SLOW.burst + [False] * 5
        finally:
            await other_redis.aclose()

    run(redis_url, scenario)


def test_keys_expire_when_drained(redis_url: str) -> None:
    """A key lives until its bucket is full again, and at least MIN_TTL_MS (each expiry is a
    DEL in the AOF: a busy subject's key must not expire between its requests)."""
    rate = Rate(per_second=2, burst=5)  # refills in 500 ms per request

    async def scenario(limiter: RateLimiter, redis: Redis) -> None:
        key = keys.rate_limit("scan", "p1")
        await limiter.hit("scan", "p1", rate, cost=3)
        assert 1400 < await redis.pttl(key) <= 1500
        value = await redis.get(key)
        await limiter.hit("scan", "p1", rate, cost=5)  # denied: nothing written
        assert await redis.get(key) == value
        await asyncio.sleep(1.55)
        assert await redis.exists(key) == 0
        await limiter.hit("scan", "p2", Rate(per_second=100, burst=5))  # full again in 10 ms
        assert MIN_TTL_MS - 100 < await redis.pttl(keys.rate_limit("scan", "p2")) <= MIN_TTL_MS
        await asyncio.sleep(MIN_TTL_MS / 1000 + 0.05)
        assert await redis.exists(keys.rate_limit("scan", "p2")) == 0

    run(redis_url, scenario)


def test_raw_subject_never_in_a_key(redis_url: str) -> None:
    async def scenario(_: RateLimiter, redis: Redis) -> None:
        store = Store.open(redis_url)  # the facade's limiter, as the API uses it
        try:
            subjects = ["203.0.113.7", "2001:db8::1", "platform_abc"]
            for subject in subjects:
                await store.rate_limits.hit("case_create", subject, SLOW)
            names = [text(n) for n in await redis.keys("*")]
            assert len(names) == len(subjects)
            for name in names:
                assert name.startswith(keys.PREFIX + "ratelimit:case_create:")
                assert not any(subject in name for subject in subjects)
        finally:
            await store.close()

    run(redis_url, scenario)


def test_rate_validation() -> None:
    for per_second, burst in [(0, 1), (-1, 1), (float("inf"), 1), (float("nan"), 1), (1, 0)]:
        with pytest.raises(ValueError, match=r"per_second|burst"):
            Rate(per_second, burst)
    assert Rate(3, 1).interval_us == 333_333
    assert Rate(1e9, 1).interval_us == 1


def test_hits_are_not_appended_to_the_aof(redis_url: str) -> None:
    """Rate-limit state is not durable: under ``appendfsync always`` a propagated SET would
    cost an fsync per request. Hits leave the AOF as it was; an ordinary write grows it."""

    async def aof_size(redis: Redis) -> int:
        return int((await redis.info("persistence"))["aof_current_size"])

    async def scenario(limiter: RateLimiter, redis: Redis) -> None:
        assert (await redis.info("persistence"))["aof_enabled"] == 1
        fast = Rate(per_second=1000, burst=5)  # full again 1 ms after a hit: kept 1 s
        await limiter.hit("scan", "warm", fast)  # the first call loads the script (propagated)
        before = await aof_size(redis)
        for i in range(50):
            assert (await limiter.hit("scan", f"p{i % 5}", SLOW)).allowed or i >= 25
            await limiter.hit("scan", "busy", fast)
            await limiter.peek("auth_fail", f"ip{i}", SLOW)
        assert await aof_size(redis) == before
        assert await redis.exists(keys.rate_limit("scan", "p0")) == 1  # yet the state is there
        await redis.set(keys.PREFIX + "test:durable", "x")  # negative control
        assert await aof_size(redis) > before

    run(redis_url, scenario)


def test_staged_decisions_in_one_batch_survive_a_script_flush(redis_url: str) -> None:
    """``stage`` + ``batch`` (the API's pipelined authentication): the same decisions as
    ``hit``/``peek``, and Redis forgetting the script (a restart) costs one reload, no error."""
    rate = Rate(per_second=0.01, burst=2)

    async def scenario(limiter: RateLimiter, redis: Redis) -> None:
        await redis.script_flush()

        def fill(pipe: Pipeline) -> None:
            limiter.stage(pipe, "scan", "p1", rate)
            limiter.stage(pipe, "auth_fail", "ip", rate, consume=False)
            pipe.get(keys.PREFIX + "test:absent")

        for left in (1, 0):
            hit, peek, absent = await limiter.batch(fill)
            assert limiter.decision(hit).remaining == left
            assert limiter.decision(peek).remaining == 2
            assert absent is None
        denied, _, _ = await limiter.batch(fill)
        assert not limiter.decision(denied).allowed
        assert not (await limiter.peek("scan", "p1", rate)).allowed

    run(redis_url, scenario)
