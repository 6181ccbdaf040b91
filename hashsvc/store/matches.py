"""Match records on cases. A record is written only while its case exists (one Lua call), so a
scan racing a withdrawal cannot resurrect any trace of the withdrawn case."""

from __future__ import annotations

import json
from dataclasses import asdict

from redis.asyncio import Redis

from hashsvc.models import MatchRecord
from hashsvc.store import keys

_RECORD_IF_CASE_EXISTS = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('RPUSH', KEYS[2], ARGV[1])
redis.call('HSET', KEYS[3], 'case_id', ARGV[2], 'platform_id', ARGV[3])
return 1
"""


class MatchStore:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._record = redis.register_script(_RECORD_IF_CASE_EXISTS)

    async def record(self, case_id: str, platform_id: str, record: MatchRecord) -> bool:
        """Append the record to the case's history; False if the case no longer exists."""
        written = await self._record(
            keys=[keys.case(case_id), keys.case_matches(case_id), keys.match(record.match_ref)],
            args=[json.dumps(asdict(record)), case_id, platform_id],
        )
        return bool(written)
