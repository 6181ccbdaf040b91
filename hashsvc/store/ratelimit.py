"""Rate limits shared by every process: GCRA (the generic cell rate algorithm) in one Lua call.

Each (bucket, subject) has one key holding its *theoretical arrival time* (TAT), in integer
microseconds of the Redis server's clock (``TIME``), so all API processes share one clock and
one budget. With emission interval ``T = 1/per_second`` and tolerance ``burst * T``, a request
of cost ``c`` is allowed iff ``max(TAT, now) + c*T - now <= burst * T``; when allowed the TAT
advances by ``c*T``. An idle subject therefore has ``burst`` requests available at once and
regains one every ``T`` seconds.

Semantics worth knowing:

- A denied hit consumes nothing and writes nothing: a client hammering while limited does not
  extend its own wait; ``retry_after_s`` is when retrying the *same* request (same cost) would
  succeed.
- A subject absent from Redis has its full burst. The key's TTL is the time until the bucket
  is full again, after which it means nothing and expires, but at least ``MIN_TTL_MS``: every
  expiry writes a DEL to the AOF, so a key must not expire between the requests of a busy
  subject (at 100/s the bucket is full again 10 ms after each one). Keys outlive their use
  by at most that second.
- The subject is hashed (sha256, truncated; see ``keys.rate_limit``) so raw client IPs and
  platform ids never appear in key names. Unkeyed hashing of an IPv4 address is reversible
  by enumeration: this is pseudonymisation bounded by the short TTLs, not anonymisation.
- Time resolution is one microsecond: the interval is rounded to whole microseconds, so rates
  above 1,000,000/s behave as 1,000,000/s.
- The state is **not durable**: the script writes with ``redis.set_repl(redis.REPL_NONE)``, so
  its SET reaches neither the AOF nor replicas (only a key's expiry does, as a DEL). Under
  ``appendfsync always`` a propagated write would cost an fsync per request (every scan takes
  a quota); the state is short-lived (TTLs of seconds to minutes) and safe to lose: after a
  Redis restart or a failover every subject starts again with its full burst, as an idle one
  would. The limits stay shared by every process.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import NoScriptError

from hashsvc.store import keys

_US = 1_000_000
MIN_TTL_MS = 1000

# KEYS: the subject's key. ARGV: interval_us, burst, cost, consume (1 = hit, 0 = peek),
# the key's minimum TTL in ms.
# Returns {allowed (0/1), retry_after_us, remaining}. All arithmetic is on integers < 2^53,
# exact in Lua's doubles; the TAT is written with %d so it is never rounded by tostring.
_GCRA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = interval * tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + cost * interval
local allow_at = new_tat - tolerance
if allow_at > now then
  return {0, allow_at - now, math.max(0, math.floor((now + tolerance - tat) / interval))}
end
if ARGV[4] == '1' then
  redis.set_repl(redis.REPL_NONE)
  redis.call('SET', KEYS[1], string.format('%d', new_tat),
             'PX', math.max(tonumber(ARGV[5]), math.ceil((new_tat - now) / 1000)))
  tat = new_tat
end
return {1, 0, math.floor((now + tolerance - tat) / interval)}
"""


@dataclass(frozen=True)
class Rate:
    """``per_second`` sustained, with up to ``burst`` requests at once."""

    per_second: float
    burst: int

    def __post_init__(self) -> None:
        if not (math.isfinite(self.per_second) and self.per_second > 0):
            raise ValueError(f"per_second must be a positive finite number, not {self.per_second}")
        if self.burst < 1:
            raise ValueError(f"burst must be at least 1, not {self.burst}")

    @property
    def interval_us(self) -> int:
        """The emission interval in whole microseconds (at least 1)."""
        return max(1, round(_US / self.per_second))


@dataclass(frozen=True)
class Decision:
    allowed: bool
    retry_after_s: float  # 0 when allowed; else seconds until the same request would be allowed
    remaining: int  # requests of cost 1 still allowed right now (>= 0)


class RateLimiter:
    """Atomic, multi-process rate limits on Redis; one key per (bucket, subject)."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._gcra = redis.register_script(_GCRA)

    async def _run(
        self, bucket: str, subject: str, rate: Rate, cost: int, consume: bool
    ) -> Decision:
        reply = await self._gcra(
            keys=[keys.rate_limit(bucket, subject)],
            args=[rate.interval_us, rate.burst, cost, 1 if consume else 0, MIN_TTL_MS],
        )
        return self.decision(reply)

    def stage(
        self,
        pipe: Pipeline,
        bucket: str,
        subject: str,
        rate: Rate,
        *,
        cost: int = 1,
        consume: bool = True,
    ) -> None:
        """Queue a ``hit`` (or, ``consume=False``, a ``peek``) in a pipeline run by
        ``batch``; read its reply with ``decision``."""
        if consume and not 1 <= cost <= rate.burst:
            raise ValueError(f"cost must be between 1 and burst ({rate.burst}), not {cost}")
        args = (rate.interval_us, rate.burst, cost, 1 if consume else 0, MIN_TTL_MS)
        pipe.evalsha(self._gcra.sha, 1, keys.rate_limit(bucket, subject), *args)

    @staticmethod
    def decision(reply: Any) -> Decision:
        """The decision of a staged call's reply."""
        allowed, retry_after_us, remaining = (int(v) for v in reply)
        return Decision(bool(allowed), retry_after_us / _US, remaining)

    async def batch(self, fill: Callable[[Pipeline], None]) -> list[Any]:
        """The replies of the commands ``fill`` queues (``stage`` and other stores' reads),
        sent in one round trip; the script is loaded again if Redis lost it (a restart)."""
        for attempt in range(2):
            try:
                async with self._redis.pipeline(transaction=False) as pipe:
                    fill(pipe)
                    return list(await pipe.execute())
            except NoScriptError:
                if attempt:
                    raise
                await self._redis.script_load(_GCRA)
        raise AssertionError("unreachable")

    async def hit(self, bucket: str, subject: str, rate: Rate, cost: int = 1) -> Decision:
        """Take ``cost`` requests from the subject's budget if all fit; if not, take nothing.

        ``cost`` must be between 1 and ``rate.burst`` (a larger cost could never be allowed).
        """
        if not 1 <= cost <= rate.burst:
            raise ValueError(f"cost must be between 1 and burst ({rate.burst}), not {cost}")
        return await self._run(bucket, subject, rate, cost, consume=True)

    async def peek(self, bucket: str, subject: str, rate: Rate) -> Decision:
        """Would one request be allowed now? Consumes nothing."""
        return await self._run(bucket, subject, rate, 1, consume=False)

    async def reset(self, bucket: str, subject: str) -> None:
        """Give the subject its full burst back (e.g. after a successful login)."""
        await self._redis.delete(keys.rate_limit(bucket, subject))
