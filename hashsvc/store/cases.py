"""Cases and the hash bank: create and withdraw are single atomic transactions that also append
to the change stream, so index replicas and the bank can never disagree for long."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence

from redis.asyncio import Redis
from redis.exceptions import WatchError

from hashsvc.models import CaseRecord, CaseStatus, FlagStatus, HashEntry
from hashsvc.store import keys
from hashsvc.store.changes import DEFAULT_RETENTION, append_change
from hashsvc.store.client import text, text_list, text_map


class CaseStore:
    """Victim cases, their hashes in the per-signal banks, and their match history."""

    def __init__(self, redis: Redis, change_retention: int = DEFAULT_RETENTION) -> None:
        self._redis = redis
        self._retention = change_retention

    async def create(
        self, case_id: str, secret_verifier: str, entries: Sequence[HashEntry], *, videos: int = 0
    ) -> list[int]:
        """Store a case and its hashes atomically; returns the hashes' bank ids."""
        last = int(await self._redis.incrby(keys.HASH_ID_SEQUENCE, len(entries)))
        hash_ids = list(range(last - len(entries) + 1, last + 1))
        async with self._redis.pipeline(transaction=True) as tx:
            tx.hset(
                keys.case(case_id),
                mapping={
                    "secret_verifier": secret_verifier,
                    "created_at": repr(time.time()),
                    "status": CaseStatus.ACTIVE.value,
                    "videos": str(videos),
                },
            )
            tx.hset(
                keys.case_hashes(case_id),
                mapping={str(h): e.signal for h, e in zip(hash_ids, entries, strict=True)},
            )
            for hash_id, entry in zip(hash_ids, entries, strict=True):
                tx.hset(keys.bank(entry.signal), str(hash_id), entry.code.hex())
                tx.hset(keys.BANK_OWNER, str(hash_id), case_id)
                append_change(tx, "add", entry.signal, hash_id, self._retention)
            tx.incr(keys.CASE_COUNT)
            await tx.execute()
        return hash_ids

    async def get(self, case_id: str) -> CaseRecord | None:
        """The case and its per-signal hash counts; None if unknown."""
        async with self._redis.pipeline(transaction=True) as tx:
            tx.hgetall(keys.case(case_id))
            tx.hvals(keys.case_hashes(case_id))
            raw_fields, raw_signals = await tx.execute()
        if not raw_fields:
            return None
        fields = text_map(raw_fields)
        signals = [text(s) for s in raw_signals]
        return CaseRecord(
            case_id=case_id,
            secret_verifier=fields["secret_verifier"],
            created_at=float(fields["created_at"]),
            status=CaseStatus(fields["status"]),
            hash_counts=dict(Counter(signals)),
            videos=int(fields.get("videos", "0")),
        )

    async def withdraw(self, case_id: str) -> bool:
        """Delete the case and its hashes from every bank, and mark its flags withdrawn
        (they lose their link to the case), atomically."""
        case_keys = (keys.case(case_id), keys.case_hashes(case_id), keys.case_flags(case_id))
        async with self._redis.pipeline(transaction=True) as tx:
            while True:
                try:
                    await tx.watch(*case_keys)
                    if not await tx.exists(case_keys[0]):
                        return False
                    hashes = text_map(await tx.hgetall(case_keys[1]))
                    flag_ids = [text(f) for f in await tx.zrange(case_keys[2], 0, -1)]
                    if flag_ids:  # their status and platform, for the platforms' flag tallies
                        await tx.watch(*(keys.flag(f) for f in flag_ids))
                    flag_rows = await self._flag_rows(flag_ids)
                    tx.multi()  # type: ignore[no-untyped-call]
                    for hash_id, signal in hashes.items():
                        tx.hdel(keys.bank(signal), hash_id)
                        tx.hdel(keys.BANK_OWNER, hash_id)
                        append_change(tx, "remove", signal, int(hash_id), self._retention)
                        tx.delete(*keys.trust_hash_keys(hash_id))  # its breaker and quarantine
                        tx.zrem(keys.QUARANTINE, hash_id)
                    for flag_id, (platform_id, status) in zip(flag_ids, flag_rows, strict=True):
                        tx.hset(keys.flag(flag_id), "status", FlagStatus.WITHDRAWN.value)
                        tx.hdel(keys.flag(flag_id), "case_id")
                        if platform_id and status and status != FlagStatus.WITHDRAWN.value:
                            tally = keys.flag_tally(platform_id)
                            tx.hincrby(tally, f"status:{status}", -1)
                            tx.hincrby(tally, f"status:{FlagStatus.WITHDRAWN.value}", 1)
                    tx.delete(*case_keys)
                    tx.decr(keys.CASE_COUNT)
                    await tx.execute()
                    return True
                except WatchError:
                    continue

    async def _flag_rows(self, flag_ids: list[str]) -> list[list[str | None]]:
        """(platform id, status) of each flag, in one round trip (on another connection: the
        caller's WATCH still guards them)."""
        async with self._redis.pipeline(transaction=False) as reads:
            for flag_id in flag_ids:
                reads.hmget(keys.flag(flag_id), ["platform_id", "status"])
            return [text_list(row) for row in await reads.execute()]

    async def bank_size(self, signal: str) -> int:
        """Hashes of one signal in the bank."""
        return int(await self._redis.hlen(keys.bank(signal)))

    async def count(self) -> int:
        """Live cases (counted by create and withdraw)."""
        return max(0, int(await self._redis.get(keys.CASE_COUNT) or 0))

    async def hash_owner(self, hash_id: int) -> tuple[str, str] | None:
        """The case owning a stored hash and the hash's signal; None if not in the bank."""
        case_id = await self._redis.hget(keys.BANK_OWNER, str(hash_id))
        if case_id is None:
            return None
        signal = await self._redis.hget(keys.case_hashes(text(case_id)), str(hash_id))
        return (text(case_id), text(signal)) if signal is not None else None

    async def signals(self, case_id: str) -> set[str]:
        """The signal types the case holds hashes of."""
        return {text(s) for s in await self._redis.hvals(keys.case_hashes(case_id))}
