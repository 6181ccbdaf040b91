"""Flags: matches waiting for a platform's human review, and the platform's decisions.

A flag is created only while its case exists and only once per id (one Lua call), so a scan
racing a withdrawal leaves no trace of the withdrawn case, and a job processed twice raises
one flag. The creation snippet is shared with the job commit script (``store/jobs.py``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import fields
from typing import cast

from redis.asyncio import Redis

from hashsvc.models import Decision, Flag, FlagStatus
from hashsvc.store import keys
from hashsvc.store.client import text, text_map

# KEYS (``flag_keys``): case, flag, case_flags, platform_flags, flag_tally; ARGV: score, then
# field/value pairs. Returns 1 when created, 0 when the flag exists or the case is gone.
FLAG_KEY_COUNT = 5
CREATE_FLAG_LUA = """
local function create_flag(k, score, pairs)
  if redis.call('EXISTS', k[1]) == 0 then return 0 end
  if redis.call('EXISTS', k[2]) == 1 then return 0 end
  redis.call('HSET', k[2], unpack(pairs))
  local flag_id = string.match(k[2], ':flag:(.+)$')
  redis.call('ZADD', k[3], score, flag_id)
  redis.call('ZADD', k[4], score, flag_id)
  local status, decision = unpack(redis.call('HMGET', k[2], 'status', 'decision'))
  redis.call('HINCRBY', k[5], 'status:' .. status, 1)
  redis.call('HINCRBY', k[5], 'decision:' .. decision, 1)
  return 1
end
"""

_CREATE = (
    CREATE_FLAG_LUA
    + """
local pairs = {}
for i = 2, #ARGV do pairs[#pairs + 1] = ARGV[i] end
return create_flag({KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]}, ARGV[1], pairs)
"""
)

# KEYS: flag, the platform's flag tally; ARGV: platform_id, decision, decided_at. Returns the
# flag's status before.
_DECIDE = """
if redis.call('HGET', KEYS[1], 'platform_id') ~= ARGV[1] then return false end
local status, decision = unpack(redis.call('HMGET', KEYS[1], 'status', 'decision'))
if status == 'withdrawn' then return status end
redis.call('HSET', KEYS[1], 'decision', ARGV[2], 'status', 'decided', 'decided_at', ARGV[3])
redis.call('HINCRBY', KEYS[2], 'status:' .. status, -1)
redis.call('HINCRBY', KEYS[2], 'status:decided', 1)
redis.call('HINCRBY', KEYS[2], 'decision:' .. decision, -1)
redis.call('HINCRBY', KEYS[2], 'decision:' .. ARGV[2], 1)
return status
"""

_FIELD_NAMES = [f.name for f in fields(Flag)]


def flag_fields(flag: Flag, case_id: str) -> list[str]:
    """The flag as a flat field/value list for HSET (None values omitted)."""
    values = {name: getattr(flag, name) for name in _FIELD_NAMES}
    pairs = ["case_id", case_id]
    for name, value in values.items():
        if name == "hash_ids":
            if value:
                pairs += [name, ",".join(map(str, value))]
        elif value is not None:
            pairs += [name, str(value)]
    return pairs


def flag_keys(flag: Flag, case_id: str) -> list[str]:
    return [
        keys.case(case_id),
        keys.flag(flag.flag_id),
        keys.case_flags(case_id),
        keys.platform_flags(flag.platform_id),
        keys.flag_tally(flag.platform_id),
    ]


def _parse(fields_: dict[str, str]) -> Flag:
    decided_at = fields_.get("decided_at")
    return Flag(
        flag_id=fields_["flag_id"],
        platform_id=fields_["platform_id"],
        platform_name=fields_["platform_name"],
        signal=fields_["signal"],
        distance=int(fields_["distance"]),
        matched_frames=int(fields_["matched_frames"]),
        created_at=float(fields_["created_at"]),
        job_id=fields_.get("job_id"),
        status=FlagStatus(fields_["status"]),
        decision=Decision(fields_["decision"]),
        decided_at=float(decided_at) if decided_at else None,
        hash_ids=tuple(int(h) for h in fields_.get("hash_ids", "").split(",") if h),
    )


class FlagStore:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._create = redis.register_script(_CREATE)
        self._decide = redis.register_script(_DECIDE)

    async def create(self, flag: Flag, case_id: str) -> bool:
        """Raise the flag on the case; False if it exists already or the case is gone."""
        created = await self._create(
            keys=flag_keys(flag, case_id), args=[repr(flag.created_at), *flag_fields(flag, case_id)]
        )
        return bool(created)

    async def get_many(self, flag_ids: list[str]) -> list[Flag]:
        async with self._redis.pipeline(transaction=False) as pipe:
            for flag_id in flag_ids:
                pipe.hgetall(keys.flag(flag_id))
            rows = await pipe.execute()
        return [_parse(text_map(row)) for row in rows if row]

    async def for_case(self, case_id: str) -> list[Flag]:
        ids = await self._redis.zrange(keys.case_flags(case_id), 0, -1)
        return await self.get_many([text(i) for i in ids])

    async def for_platform(
        self,
        platform_id: str,
        *,
        status: FlagStatus | None,
        limit: int,
        after: tuple[float, str] | None,
    ) -> tuple[list[Flag], tuple[float, str] | None]:
        """Newest first, at most ``limit``, strictly after the position ``after`` (creation
        time, flag id) of the previous page; also returns the position ending this page (None
        when nothing is left). Flags created at the same instant are ordered by id, so pages
        never skip or repeat one."""
        key = keys.platform_flags(platform_id)
        upper = repr(after[0]) if after else "+inf"
        found: list[Flag] = []
        offset, position = 0, after
        while len(found) < limit:
            rows = cast(
                list[tuple[str, float]],
                await self._redis.zrevrangebyscore(
                    key, upper, "-inf", start=offset, num=limit, withscores=True
                ),
            )
            offset += len(rows)
            fresh = [
                (float(score), text(member))
                for member, score in rows
                if after is None or (float(score), text(member)) < after
            ]
            by_id = {f.flag_id: f for f in await self.get_many([m for _, m in fresh])}
            for score, member in fresh:
                position = (score, member)
                flag = by_id.get(member)
                if flag is not None and (status is None or flag.status == status):
                    found.append(flag)
                    if len(found) == limit:
                        break
            if len(rows) < limit:
                return found, (position if len(found) == limit else None)
        return found, position

    async def decide(self, platform_id: str, flag_id: str, decision: Decision) -> str | None:
        """Record a platform's decision; returns the previous status, None if not its flag."""
        previous = await self._decide(
            keys=[keys.flag(flag_id), keys.flag_tally(platform_id)],
            args=[platform_id, decision.value, repr(time.time())],
        )
        return text(previous) if previous else None

    async def tally(self, platform_ids: Sequence[str]) -> tuple[dict[str, int], dict[str, int]]:
        """Flags per status and per decision over ``platform_ids``, from the counters the flag
        scripts keep (one read per platform, whatever the number of flags)."""
        statuses: dict[str, int] = {}
        decisions: dict[str, int] = {}
        async with self._redis.pipeline(transaction=False) as pipe:
            for platform_id in platform_ids:
                pipe.hgetall(keys.flag_tally(platform_id))
            rows = await pipe.execute()
        for row in rows:
            for field, count in text_map(row).items():
                kind, _, value = field.partition(":")
                into = statuses if kind == "status" else decisions
                if int(count):
                    into[value] = into.get(value, 0) + int(count)
        return statuses, decisions
