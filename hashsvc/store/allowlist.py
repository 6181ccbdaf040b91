"""The allow-list bank: hashes of known-benign content, added and removed by operators.

One hash of codes per signal, one hash of metadata, and a version counter bumped by every
change in the same transaction, so that a process's in-memory copy (``hashsvc.trust``) knows
when to reload. Entries carry no case data."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass

from redis.asyncio import Redis

from hashsvc.models import HashEntry
from hashsvc.store import keys
from hashsvc.store.client import text, text_map


@dataclass(frozen=True)
class AllowEntry:
    entry_id: str
    signal: str
    code: bytes
    added_at: float
    actor: str
    label: str


class AllowListStore:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def add(self, entries: Sequence[HashEntry], *, actor: str, label: str) -> list[str]:
        """Add hashes (an entry already listed is added again under a new id); their ids."""
        last = int(await self._redis.incrby(keys.ALLOWLIST_SEQUENCE, len(entries)))
        ids = [f"a{n}" for n in range(last - len(entries) + 1, last + 1)]
        now = time.time()
        async with self._redis.pipeline(transaction=True) as tx:
            for entry_id, entry in zip(ids, entries, strict=True):
                tx.hset(keys.allowlist(entry.signal), entry_id, entry.code.hex())
                meta = {"signal": entry.signal, "added_at": now, "actor": actor, "label": label}
                tx.hset(keys.ALLOWLIST_META, entry_id, json.dumps(meta))
            tx.incr(keys.ALLOWLIST_VERSION)
            await tx.execute()
        return ids

    async def remove(self, entry_id: str) -> bool:
        raw = await self._redis.hget(keys.ALLOWLIST_META, entry_id)
        if raw is None:
            return False
        signal = json.loads(text(raw))["signal"]
        async with self._redis.pipeline(transaction=True) as tx:
            tx.hdel(keys.allowlist(signal), entry_id)
            tx.hdel(keys.ALLOWLIST_META, entry_id)
            tx.incr(keys.ALLOWLIST_VERSION)
            removed, _, _ = await tx.execute()
        return bool(removed)

    async def version(self) -> str:
        found = await self._redis.get(keys.ALLOWLIST_VERSION)
        return text(found) if found is not None else "0"

    async def codes(self, signal: str) -> tuple[str, dict[str, bytes]]:
        """The version and every code of one signal, read atomically."""
        async with self._redis.pipeline(transaction=True) as tx:
            tx.get(keys.ALLOWLIST_VERSION)
            tx.hgetall(keys.allowlist(signal))
            version, raw = await tx.execute()
        codes = {k: bytes.fromhex(v) for k, v in text_map(raw).items()}
        return (text(version) if version is not None else "0"), codes

    async def entries(self) -> list[AllowEntry]:
        meta = text_map(await self._redis.hgetall(keys.ALLOWLIST_META))
        by_signal: dict[str, dict[str, str]] = {}
        found = []
        for entry_id, raw in meta.items():
            info = json.loads(raw)
            signal = info["signal"]
            if signal not in by_signal:
                by_signal[signal] = text_map(await self._redis.hgetall(keys.allowlist(signal)))
            code = by_signal[signal].get(entry_id)
            if code is not None:
                found.append(
                    AllowEntry(
                        entry_id,
                        signal,
                        bytes.fromhex(code),
                        float(info["added_at"]),
                        info["actor"],
                        info.get("label", ""),
                    )
                )
        return sorted(found, key=lambda e: int(e.entry_id[1:]))

    async def size(self, signal: str) -> int:
        return int(await self._redis.hlen(keys.allowlist(signal)))
