"""Trust state of stored hashes: the flood/poisoning breaker, platforms' feedback, quarantine.

Per stored hash (``keys.trust_hash`` and friends):
- every scan that matches it is one *match event* (upload id, platform): a sliding window of
  distinct uploads and distinct platforms (sorted sets trimmed by time and size, with a TTL:
  bounded memory), plus running totals per platform for operators;
- when the window holds at least ``uploads`` distinct uploads from ``platforms`` distinct
  platforms, the hash is quarantined in the same Lua call that counted the match (and that
  match is held): no race between counting and tripping, and one round trip per scan;
- platforms' decisions on flags of the hash are kept per flag; when ``platforms`` distinct
  platforms have a ``not_violating`` decision on it, it is quarantined (same call);
- a quarantined hash raises no flags until an operator releases it (back to active, window
  cleared) or confirms it (active, never quarantined automatically again until reset).
Every automatic quarantine appends its audit entry (``store/audit.py`` fields) in the same
Lua call; operators' actions are audited by their callers.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any, Final, cast

from redis.asyncio import Redis

from hashsvc.store import keys
from hashsvc.store.client import text, text_list, text_map

ACTIVE: Final = "active"
QUARANTINED: Final = "quarantined"
CONFIRMED: Final = "confirmed"
TRIPPED: Final = "tripped"  # quarantined by this very match event


def hash_ref(hash_id: int) -> str:
    """How operators (API, CLI, audit log) name a stored hash: ``h<bank id>``."""
    return f"h{hash_id}"


def parse_hash_ref(ref: str) -> int | None:
    if ref.startswith("h") and ref[1:].isdigit() and len(ref) <= 21:
        return int(ref[1:])
    return None


# Audit entry fields as store/audit.py writes them; ARGV time, actor, action, object.
_AUDIT_LUA = """
local function audit(stream, time, actor, action, object)
  redis.call('XADD', stream, '*', 'time', time, 'actor', actor, 'action', action,
             'object', object, 'request_id', '')
end
"""

# KEYS: quarantine zset, audit stream, allow-list version, oracle counter, then per hash:
#   state hash, uploads window, platforms window.
# ARGV: now, window_s, min uploads, min platforms, upload id, platform id, oracle limit,
#   oracle ttl_s, hash-only scan (0/1), n, then n hash ids.
# Returns: {allow-list version, oracle alert raised (0/1), state of each hash}.
_RECORD_MATCHES = (
    _AUDIT_LUA
    + """
local now, window = tonumber(ARGV[1]), tonumber(ARGV[2])
local min_uploads, min_platforms = tonumber(ARGV[3]), tonumber(ARGV[4])
local upload, platform = ARGV[5], ARGV[6]
local n = tonumber(ARGV[10])
local ttl_ms = math.ceil(window * 1000) + 1000
local cap = min_uploads + 1
local states = {}
for i = 1, n do
  local id = ARGV[10 + i]
  local st, up, pl = KEYS[4 + 3 * i - 2], KEYS[4 + 3 * i - 1], KEYS[4 + 3 * i]
  local state = redis.call('HGET', st, 'state') or 'active'
  local fresh = 1
  if state ~= 'confirmed' then
    fresh = redis.call('ZADD', up, now, upload)
    redis.call('ZREMRANGEBYSCORE', up, '-inf', '(' .. (now - window))
    redis.call('ZREMRANGEBYRANK', up, 0, -(cap + 1))
    redis.call('PEXPIRE', up, ttl_ms)
    redis.call('ZADD', pl, now, platform)
    redis.call('ZREMRANGEBYSCORE', pl, '-inf', '(' .. (now - window))
    redis.call('PEXPIRE', pl, ttl_ms)
    if state == 'active' and redis.call('ZCARD', up) >= min_uploads
        and redis.call('ZCARD', pl) >= min_platforms then
      redis.call('HSET', st, 'state', 'quarantined', 'reason', 'breaker', 'state_at', ARGV[1])
      redis.call('ZADD', KEYS[1], now, id)
      audit(KEYS[2], ARGV[1], 'breaker', 'hash.quarantine', 'h' .. id)
      state = 'tripped'
    end
  end
  if fresh == 1 then  -- a redelivered job counts once
    redis.call('HINCRBY', st, 'matches', 1)
    redis.call('HINCRBY', st, 'm:' .. platform, 1)
    if state ~= 'active' and state ~= 'confirmed' then redis.call('HINCRBY', st, 'held', 1) end
  end
  redis.call('HSETNX', st, 'first_at', ARGV[1])
  redis.call('HSET', st, 'last_at', ARGV[1])
  states[i] = state
end
local alert = 0
if ARGV[9] == '1' then
  local count = redis.call('INCR', KEYS[4])
  if count == 1 then redis.call('EXPIRE', KEYS[4], ARGV[8]) end
  if count == tonumber(ARGV[7]) then
    audit(KEYS[2], ARGV[1], 'oracle', 'oracle.alert', 'platform:' .. platform)
    alert = 1
  end
end
local version = redis.call('GET', KEYS[3]) or '0'
return {version, alert, unpack(states)}
"""
)

# KEYS: quarantine zset, audit stream, then per hash: state hash, votes hash.
# ARGV: now, min platforms, flag id, platform id, decision, n, then n hash ids.
# Returns the ids quarantined by this decision.
_RECORD_DECISION = (
    _AUDIT_LUA
    + """
local min_platforms, n = tonumber(ARGV[2]), tonumber(ARGV[6])
local quarantined = {}
for i = 1, n do
  local id = ARGV[6 + i]
  local st, votes = KEYS[2 + 2 * i - 1], KEYS[2 + 2 * i]
  redis.call('HSET', votes, ARGV[3], ARGV[4] .. ' ' .. ARGV[5])
  local seen, count = {}, 0
  for _, vote in ipairs(redis.call('HVALS', votes)) do
    local who, what = string.match(vote, '^(%S+) (%S+)$')
    if what == 'not_violating' and not seen[who] then
      seen[who] = true
      count = count + 1
    end
  end
  if count >= min_platforms and not redis.call('HGET', st, 'state') then
    redis.call('HSET', st, 'state', 'quarantined', 'reason', 'feedback', 'state_at', ARGV[1])
    redis.call('ZADD', KEYS[1], tonumber(ARGV[1]), id)
    audit(KEYS[2], ARGV[1], 'feedback', 'hash.quarantine', 'h' .. id)
    quarantined[#quarantined + 1] = id
  end
end
return quarantined
"""
)

# KEYS: quarantine zset, state hash, uploads window, platforms window.
# ARGV: hash id, new state ('active' or 'confirmed'), now, expected state ('' = any).
# Returns the state before, or false when it was not the expected one.
_SET_STATE = """
local before = redis.call('HGET', KEYS[2], 'state') or 'active'
if ARGV[4] ~= '' and before ~= ARGV[4] then return false end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[3], KEYS[4])
if ARGV[2] == 'active' then
  redis.call('HDEL', KEYS[2], 'state', 'reason')
else
  redis.call('HSET', KEYS[2], 'state', ARGV[2])
end
redis.call('HSET', KEYS[2], 'state_at', ARGV[3])
return before
"""

# KEYS: quarantine zset, audit stream, then one state hash per hash. ARGV: now, reason, ids.
# Quarantines the active ones among the ids; returns those.
_QUARANTINE = (
    _AUDIT_LUA
    + """
local done = {}
for i = 3, #KEYS do
  local id = ARGV[i]
  if not redis.call('HGET', KEYS[i], 'state') then
    redis.call('HSET', KEYS[i], 'state', 'quarantined', 'reason', ARGV[2], 'state_at', ARGV[1])
    redis.call('ZADD', KEYS[1], tonumber(ARGV[1]), id)
    audit(KEYS[2], ARGV[1], ARGV[2], 'hash.quarantine', 'h' .. id)
    done[#done + 1] = id
  end
end
return done
"""
)

# KEYS: case hashes, quarantine zset. Whether one of the case's hashes is quarantined.
_CASE_UNDER_REVIEW = """
local ids = redis.call('HKEYS', KEYS[1])
for _, id in ipairs(ids) do
  if redis.call('ZSCORE', KEYS[2], id) then return 1 end
end
return 0
"""


@dataclass(frozen=True)
class BreakerLimits:
    """Quarantine a hash matched by ``uploads`` distinct uploads from ``platforms`` distinct
    platforms within ``window_s``; alert on ``oracle_matches`` matching hash-only scans of
    one platform within ``oracle_window_s``."""

    uploads: int
    platforms: int
    window_s: float
    oracle_matches: int
    oracle_window_s: int


@dataclass(frozen=True)
class MatchVerdict:
    """What the trust state says about one scan's matched hashes."""

    states: dict[int, str]  # hash id -> active, confirmed, quarantined or tripped
    allowlist_version: str
    oracle_alert: bool

    def held(self) -> set[int]:
        return {h for h, s in self.states.items() if s in (QUARANTINED, TRIPPED)}

    def tripped(self) -> list[int]:
        return sorted(h for h, s in self.states.items() if s == TRIPPED)


@dataclass(frozen=True)
class HashTrust:
    """Everything operators see about one stored hash."""

    hash_id: int
    state: str
    reason: str | None
    state_at: float | None
    quarantined_at: float | None
    matches: int
    held: int
    first_at: float | None
    last_at: float | None
    matches_by_platform: dict[str, int]
    window_uploads: int
    window_platforms: int
    decisions_by_platform: dict[str, dict[str, int]] = field(default_factory=dict)


def _float(value: str | None) -> float | None:
    return float(value) if value else None


class QuarantineStore:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._record_matches = redis.register_script(_RECORD_MATCHES)
        self._record_decision = redis.register_script(_RECORD_DECISION)
        self._set_state = redis.register_script(_SET_STATE)
        self._quarantine = redis.register_script(_QUARANTINE)
        self._under_review = redis.register_script(_CASE_UNDER_REVIEW)

    async def record_matches(
        self,
        hash_ids: list[int],
        platform_id: str,
        upload_id: str,
        limits: BreakerLimits,
        *,
        now: float,
        hash_only: bool,
    ) -> MatchVerdict:
        """Count one scan's match events, trip the breaker where due, and return each hash's
        state (one Lua call). ``upload_id`` identifies the upload (a job id, so a redelivered
        job counts once)."""
        bucket = int(now // limits.oracle_window_s)
        script_keys = [
            keys.QUARANTINE,
            keys.AUDIT,
            keys.ALLOWLIST_VERSION,
            keys.oracle_counter(platform_id, bucket),
        ]
        for hash_id in hash_ids:
            script_keys += [
                keys.trust_hash(hash_id),
                keys.trust_uploads(hash_id),
                keys.trust_platforms(hash_id),
            ]
        reply = await self._record_matches(
            keys=script_keys,
            args=[
                repr(now),
                repr(limits.window_s),
                str(limits.uploads),
                str(limits.platforms),
                upload_id,
                platform_id,
                str(limits.oracle_matches),
                str(limits.oracle_window_s),
                "1" if hash_only else "0",
                str(len(hash_ids)),
                *map(str, hash_ids),
            ],
        )
        states = [text(s) for s in reply[2:]]
        return MatchVerdict(
            states=dict(zip(hash_ids, states, strict=True)),
            allowlist_version=text(reply[0]),
            oracle_alert=bool(int(reply[1])),
        )

    async def record_decision(
        self,
        hash_ids: tuple[int, ...],
        flag_id: str,
        platform_id: str,
        decision: str,
        *,
        min_platforms: int,
        now: float,
    ) -> list[int]:
        """Keep a platform's decision on a flag of these hashes; quarantine a hash that
        ``min_platforms`` platforms marked ``not_violating``. Returns the ids quarantined."""
        if not hash_ids:
            return []
        script_keys = [keys.QUARANTINE, keys.AUDIT]
        for hash_id in hash_ids:
            script_keys += [keys.trust_hash(hash_id), keys.trust_votes(hash_id)]
        done = await self._record_decision(
            keys=script_keys,
            args=[
                repr(now),
                str(min_platforms),
                flag_id,
                platform_id,
                decision,
                str(len(hash_ids)),
                *map(str, hash_ids),
            ],
        )
        return [int(text(h)) for h in done]

    async def quarantine(self, hash_ids: list[int], reason: str, *, now: float) -> list[int]:
        """Quarantine the active ones among ``hash_ids`` (audited as actor ``reason``)."""
        if not hash_ids:
            return []
        done = await self._quarantine(
            keys=[keys.QUARANTINE, keys.AUDIT, *(keys.trust_hash(h) for h in hash_ids)],
            args=[repr(now), reason, *map(str, hash_ids)],
        )
        return [int(text(h)) for h in done]

    async def set_state(
        self, hash_id: int, state: str, *, now: float, expected: str | None = None
    ) -> str | None:
        """Release (``active``) or confirm a hash; its breaker window is cleared. Returns the
        state before, None if it was not ``expected``."""
        before = await self._set_state(
            keys=[
                keys.QUARANTINE,
                keys.trust_hash(hash_id),
                keys.trust_uploads(hash_id),
                keys.trust_platforms(hash_id),
            ],
            args=[str(hash_id), state, repr(now), expected or ""],
        )
        return text(before) if before else None

    async def case_under_review(self, case_id: str) -> bool:
        return bool(
            await self._under_review(keys=[keys.case_hashes(case_id), keys.QUARANTINE], args=[])
        )

    async def quarantined(self, *, limit: int, offset: int = 0) -> list[tuple[int, float]]:
        """Quarantined hash ids, oldest first, with the time each was quarantined."""
        rows = cast(
            list[tuple[str, float]],
            await self._redis.zrange(keys.QUARANTINE, offset, offset + limit - 1, withscores=True),
        )
        return [(int(text(member)), float(score)) for member, score in rows]

    async def count(self) -> int:
        return int(await self._redis.zcard(keys.QUARANTINE))

    async def states(self, hash_ids: list[int]) -> dict[int, str]:
        """The state of each hash (active, quarantined or confirmed)."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for hash_id in hash_ids:
                pipe.hget(keys.trust_hash(hash_id), "state")
            found = text_list(await pipe.execute())
        return {h: s or ACTIVE for h, s in zip(hash_ids, found, strict=True)}

    async def describe(self, hash_ids: list[int]) -> list[HashTrust]:
        """Operators' view of each hash: state, match totals, breaker window, decisions."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for hash_id in hash_ids:
                pipe.hgetall(keys.trust_hash(hash_id))
                pipe.zcard(keys.trust_uploads(hash_id))
                pipe.zcard(keys.trust_platforms(hash_id))
                pipe.hvals(keys.trust_votes(hash_id))
                pipe.zscore(keys.QUARANTINE, str(hash_id))
            replies: list[Any] = await pipe.execute()
        described = []
        for i, hash_id in enumerate(hash_ids):
            raw, uploads, platforms, votes, quarantined_at = replies[5 * i : 5 * i + 5]
            fields = text_map(raw)
            decisions: dict[str, Counter[str]] = defaultdict(Counter)
            for vote in votes:
                platform, _, decision = text(vote).partition(" ")
                decisions[platform][decision] += 1
            described.append(
                HashTrust(
                    hash_id=hash_id,
                    state=fields.get("state", ACTIVE),
                    reason=fields.get("reason"),
                    state_at=_float(fields.get("state_at")),
                    quarantined_at=float(quarantined_at) if quarantined_at is not None else None,
                    matches=int(fields.get("matches", "0")),
                    held=int(fields.get("held", "0")),
                    first_at=_float(fields.get("first_at")),
                    last_at=_float(fields.get("last_at")),
                    matches_by_platform={
                        k[2:]: int(v) for k, v in fields.items() if k.startswith("m:")
                    },
                    window_uploads=int(uploads),
                    window_platforms=int(platforms),
                    decisions_by_platform={p: dict(c) for p, c in decisions.items()},
                )
            )
        return described
