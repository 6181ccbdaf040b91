"""Scan jobs on a Redis Stream with one consumer group, crash-safe by construction:

- enqueue writes the job hash, the upload blob (with a TTL) and the stream entry in one MULTI;
- a worker bumps the job's ``attempt`` (its fencing token) when it takes a delivery;
- the result, the flags, the status, the blob's deletion and XACK+XDEL happen in one Lua call
  that refuses a stale attempt, so a paused worker cannot commit over a newer owner and a crash
  leaves either "not done" (redelivered) or "done" (acknowledged), never a mix;
- entries left pending by a dead worker are reclaimed with XAUTOCLAIM after a visibility timeout;
- after too many deliveries the job moves to the dead-letter stream, status failed.
The stream is never trimmed: acknowledged entries are deleted, so its length is the backlog.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import fields
from typing import Any, cast

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from hashsvc.models import Flag, JobStatus, ScanJob
from hashsvc.store import keys
from hashsvc.store.client import text, text_map
from hashsvc.store.flags import CREATE_FLAG_LUA, flag_fields, flag_keys

Delivery = tuple[str, str]  # (stream entry id, job id)

# KEYS: job, jobs stream, blob, done counter, then the flag_keys of each flag (5 keys).
# ARGV: attempt, entry id, group, result, finished_at, n_flags, then per flag: score,
# n_pairs, pairs...
_COMMIT_DONE = (
    CREATE_FLAG_LUA
    + """
if redis.call('HGET', KEYS[1], 'attempt') ~= ARGV[1] then return 'lost_lease' end
local status = redis.call('HGET', KEYS[1], 'status')
if status ~= 'done' and status ~= 'failed' then
  local arg, key = 7, 5
  for _ = 1, tonumber(ARGV[6]) do
    local score, n = ARGV[arg], tonumber(ARGV[arg + 1])
    local pairs = {}
    for i = 1, n do pairs[i] = ARGV[arg + 1 + i] end
    create_flag({KEYS[key], KEYS[key + 1], KEYS[key + 2], KEYS[key + 3], KEYS[key + 4]},
                score, pairs)
    arg, key = arg + 2 + n, key + 5
  end
  redis.call('HSET', KEYS[1], 'status', 'done', 'result', ARGV[4], 'finished_at', ARGV[5])
  redis.call('HDEL', KEYS[1], 'error')
  redis.call('INCR', KEYS[4])
end
redis.call('DEL', KEYS[3])
redis.call('XACK', KEYS[2], ARGV[3], ARGV[2])
redis.call('XDEL', KEYS[2], ARGV[2])
if status == 'done' or status == 'failed' then return 'duplicate' end
return 'ok'
"""
)

# KEYS: job, jobs stream, blob, dead-letter stream, failed counter.
# ARGV: attempt, entry id, group, error, finished_at, deliveries, job id.
_COMMIT_FAILED = """
if redis.call('HGET', KEYS[1], 'attempt') ~= ARGV[1] then return 'lost_lease' end
local status = redis.call('HGET', KEYS[1], 'status')
if status ~= 'done' and status ~= 'failed' then
  redis.call('HSET', KEYS[1], 'status', 'failed', 'error', ARGV[4], 'finished_at', ARGV[5])
  redis.call('XADD', KEYS[4], '*', 'job_id', ARGV[7], 'error', ARGV[4], 'deliveries', ARGV[6])
  redis.call('INCR', KEYS[5])
end
redis.call('DEL', KEYS[3])
redis.call('XACK', KEYS[2], ARGV[3], ARGV[2])
redis.call('XDEL', KEYS[2], ARGV[2])
return 'ok'
"""

# KEYS: job; ARGV: attempt, error. A failed attempt that will be retried.
_RECORD_RETRY = """
if redis.call('HGET', KEYS[1], 'attempt') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'status', 'queued', 'error', ARGV[2])
return 1
"""

# KEYS: job; ARGV: consumer, started_at. Returns the new attempt (fencing token), or -1.
_START_ATTEMPT = """
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return -1 end
local attempt = redis.call('HINCRBY', KEYS[1], 'attempt', 1)
if status ~= 'done' and status ~= 'failed' then
  redis.call('HSET', KEYS[1], 'status', 'running', 'started_at', ARGV[2], 'worker', ARGV[1])
end
return attempt
"""

_JOB_FIELDS = [f.name for f in fields(ScanJob)]


def _parse(fields_: dict[str, str]) -> ScanJob:
    def number(name: str) -> float | None:
        return float(fields_[name]) if fields_.get(name) else None

    return ScanJob(
        job_id=fields_["job_id"],
        platform_id=fields_["platform_id"],
        status=JobStatus(fields_["status"]),
        source=fields_["source"],
        uri=fields_.get("uri") or None,
        created_at=float(fields_["created_at"]),
        attempt=int(fields_.get("attempt", "0")),
        started_at=number("started_at"),
        finished_at=number("finished_at"),
        error=fields_.get("error"),
        result=fields_.get("result"),
    )


def _deliveries(raw: object) -> list[Delivery]:
    """(entry id, job id) pairs from an XREADGROUP/XAUTOCLAIM entry list."""
    found: list[Delivery] = []
    for entry_id, entry_fields in raw or []:  # type: ignore[attr-defined]
        if entry_fields:  # a claimed entry deleted meanwhile comes back without fields
            found.append((text(entry_id), text_map(entry_fields)["job_id"]))
    return found


class JobStore:
    def __init__(self, redis: Redis, raw: Redis) -> None:
        self._redis = redis
        self._raw = raw  # no response decoding: upload blobs are bytes
        self._commit_done = redis.register_script(_COMMIT_DONE)
        self._commit_failed = redis.register_script(_COMMIT_FAILED)
        self._record_retry = redis.register_script(_RECORD_RETRY)
        self._start_attempt = redis.register_script(_START_ATTEMPT)

    async def enqueue(self, job: ScanJob, blob: bytes | None, blob_ttl_s: int) -> None:
        """Persist the job (and its upload) and queue it, atomically."""
        mapping = {
            name: str(getattr(job, name)) for name in _JOB_FIELDS if getattr(job, name) is not None
        }
        async with self._raw.pipeline(transaction=True) as tx:
            if blob is not None:
                tx.set(keys.job_blob(job.job_id), blob, ex=blob_ttl_s)
            tx.hset(keys.job(job.job_id), mapping=cast(Any, mapping))
            tx.xadd(keys.JOBS, {"job_id": job.job_id})
            tx.incr(keys.JOBS_ACCEPTED)
            await tx.execute()

    async def ledger(self) -> dict[str, int]:
        """accepted, done, failed and pending (queued or in progress), read atomically:
        accepted == done + failed + pending always holds."""
        async with self._redis.pipeline(transaction=True) as tx:
            tx.get(keys.JOBS_ACCEPTED)
            tx.get(keys.JOBS_DONE)
            tx.get(keys.JOBS_FAILED)
            tx.xlen(keys.JOBS)
            accepted, done, failed, pending = await tx.execute()
        return {
            "accepted": int(accepted or 0),
            "done": int(done or 0),
            "failed": int(failed or 0),
            "pending": int(pending or 0),
        }

    async def backlog(self) -> int:
        """Jobs queued or in progress (acknowledged entries are deleted from the stream)."""
        return int(await self._redis.xlen(keys.JOBS))

    async def get(self, job_id: str) -> ScanJob | None:
        found = text_map(await self._redis.hgetall(keys.job(job_id)))
        return _parse(found) if found else None

    async def blob(self, job_id: str) -> bytes | None:
        data = await self._raw.get(keys.job_blob(job_id))
        if data is None or isinstance(data, bytes):
            return data
        return data.encode()  # unreachable with the raw client; keeps the type exact

    async def ensure_group(self) -> None:
        try:
            await self._redis.xgroup_create(keys.JOBS, keys.JOBS_GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def read_new(self, consumer: str, block_ms: int) -> list[Delivery]:
        reply = await self._redis.xreadgroup(
            keys.JOBS_GROUP, consumer, {keys.JOBS: ">"}, count=1, block=block_ms
        )
        if not reply:
            return []
        streams = reply.values() if isinstance(reply, dict) else [entries for _, entries in reply]
        return [d for entries in streams for d in _deliveries(entries)]

    async def reclaim(self, consumer: str, min_idle_ms: int) -> list[Delivery]:
        """Take over one entry idle for ``min_idle_ms`` (its owner died or stalled)."""
        reply = await self._redis.xautoclaim(
            keys.JOBS, keys.JOBS_GROUP, consumer, min_idle_ms, start_id="0-0", count=1
        )
        return _deliveries(reply[1])

    async def renew(self, consumer: str, entry_id: str) -> None:
        """Reset the entry's idle time (a lease renewal) without counting a delivery."""
        await self._redis.xclaim(keys.JOBS, keys.JOBS_GROUP, consumer, 0, [entry_id], justid=True)

    async def deliveries(self, entry_id: str) -> int:
        """How many times the entry has been delivered (0 if no longer pending)."""
        pending = await self._redis.xpending_range(
            keys.JOBS, keys.JOBS_GROUP, min=entry_id, max=entry_id, count=1
        )
        return int(pending[0]["times_delivered"]) if pending else 0

    async def start_attempt(self, job_id: str, consumer: str) -> int:
        """Take the job: bump and return its fencing token (-1 if the job is unknown)."""
        return int(
            await self._start_attempt(keys=[keys.job(job_id)], args=[consumer, repr(time.time())])
        )

    async def commit_done(
        self,
        job_id: str,
        entry_id: str,
        attempt: int,
        result_json: str,
        flags: Sequence[tuple[Flag, str]],
    ) -> str:
        """Write result, flags and status, delete the blob, acknowledge: one atomic step.
        Returns ``ok``, ``duplicate`` (already finished) or ``lost_lease`` (stale attempt)."""
        flag_key_list: list[str] = []
        flag_args: list[str] = []
        for flag, case_id in flags:
            pairs = flag_fields(flag, case_id)
            flag_key_list += flag_keys(flag, case_id)
            flag_args += [repr(flag.created_at), str(len(pairs)), *pairs]
        outcome = await self._commit_done(
            keys=[
                keys.job(job_id),
                keys.JOBS,
                keys.job_blob(job_id),
                keys.JOBS_DONE,
                *flag_key_list,
            ],
            args=[
                str(attempt),
                entry_id,
                keys.JOBS_GROUP,
                result_json,
                repr(time.time()),
                str(len(flags)),
                *flag_args,
            ],
        )
        return text(outcome)

    async def commit_failed(
        self, job_id: str, entry_id: str, attempt: int, error: str, deliveries: int
    ) -> str:
        """Mark failed, dead-letter with the error, delete the blob, acknowledge: atomically."""
        outcome = await self._commit_failed(
            keys=[
                keys.job(job_id),
                keys.JOBS,
                keys.job_blob(job_id),
                keys.DEAD_JOBS,
                keys.JOBS_FAILED,
            ],
            args=[
                str(attempt),
                entry_id,
                keys.JOBS_GROUP,
                error,
                repr(time.time()),
                str(deliveries),
                job_id,
            ],
        )
        return text(outcome)

    async def record_retry(self, job_id: str, attempt: int, error: str) -> None:
        await self._record_retry(keys=[keys.job(job_id)], args=[str(attempt), error])

    async def close(self) -> None:
        await self._raw.aclose()

    async def dead_letters(self) -> list[dict[str, str]]:
        entries = await self._redis.xrange(keys.DEAD_JOBS)
        return [text_map(f) for _, f in entries or []]

    async def discard(self, entry_id: str) -> None:
        """Acknowledge and delete an entry whose job record no longer exists."""
        async with self._redis.pipeline(transaction=True) as tx:
            tx.xack(keys.JOBS, keys.JOBS_GROUP, entry_id)
            tx.xdel(keys.JOBS, entry_id)
            await tx.execute()
