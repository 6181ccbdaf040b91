"""Flags: matches waiting for a platform's human review, and the platform's decisions.

A flag is created only while its case exists and only once per id (one Lua call), so a scan
racing a withdrawal leaves no trace of the withdrawn case, and a job processed twice raises
one flag. The creation snippet is shared with the job commit script (``store/jobs.py``).
"""

from __future__ import annotations

import time
from dataclasses import fields
from typing import cast

from redis.asyncio import Redis

from hashsvc.models import Decision, Flag, FlagStatus
from hashsvc.store import keys
from hashsvc.store.client import text, text_map

# KEYS: case, flag, case_flags, platform_flags; ARGV: score, then field/value pairs.
# Returns 1 when created, 0 when the flag exists or the case is gone.
CREATE_FLAG_LUA = """
local function create_flag(case_key, flag_key, case_flags_key, platform_flags_key, score, pairs)
  if redis.call('EXISTS', case_key) == 0 then return 0 end
  if redis.call('EXISTS', flag_key) == 1 then return 0 end
  redis.call('HSET', flag_key, unpack(pairs))
  local flag_id = string.match(flag_key, ':flag:(.+)$')
  redis.call('ZADD', case_flags_key, score, flag_id)
  redis.call('ZADD', platform_flags_key, score, flag_id)
  return 1
end
"""

_CREATE = (
    CREATE_FLAG_LUA
    + """
local pairs = {}
for i = 2, #ARGV do pairs[#pairs + 1] = ARGV[i] end
return create_flag(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[1], pairs)
"""
)

# KEYS: flag; ARGV: platform_id, decision, decided_at. Returns the flag's status before.
_DECIDE = """
if redis.call('HGET', KEYS[1], 'platform_id') ~= ARGV[1] then return false end
local status = redis.call('HGET', KEYS[1], 'status')
if status == 'withdrawn' then return status end
redis.call('HSET', KEYS[1], 'decision', ARGV[2], 'status', 'decided', 'decided_at', ARGV[3])
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
            keys=[keys.flag(flag_id)], args=[platform_id, decision.value, repr(time.time())]
        )
        return text(previous) if previous else None

    async def tally(self) -> tuple[dict[str, int], dict[str, int]]:
        """Flags per status and per decision, over every platform (reads every flag: for
        operators' statistics, not for a hot path)."""
        statuses: dict[str, int] = {}
        decisions: dict[str, int] = {}
        for platform_id in sorted(text(p) for p in await self._redis.smembers(keys.PLATFORMS)):
            ids = [
                text(i) for i in await self._redis.zrange(keys.platform_flags(platform_id), 0, -1)
            ]
            for start in range(0, len(ids), 1000):
                async with self._redis.pipeline(transaction=False) as pipe:
                    for flag_id in ids[start : start + 1000]:
                        pipe.hmget(keys.flag(flag_id), ["status", "decision"])
                    rows = await pipe.execute()
                for status, decision in rows:
                    if status is not None:
                        statuses[text(status)] = statuses.get(text(status), 0) + 1
                        decisions[text(decision)] = decisions.get(text(decision), 0) + 1
        return statuses, decisions
