"""The bank's change stream: every add and remove, in commit order, for index replicas.

Writers append inside the same transaction as the bank change; readers take a cursor before a
snapshot and replay from it (adds are upserts and removes of unknown ids are no-ops, so
replaying a change the snapshot already saw is harmless).

Entries carry hash ids, never hash codes: a reader takes an added code from the bank itself,
so once a case is withdrawn its hashes exist nowhere in Redis (nor, after the next AOF
rewrite, on disk). An add whose code is already gone was withdrawn later in the stream and
is read as a remove.

The stream keeps about ``retention`` entries (older ones are trimmed as new ones come): a
reader whose cursor entry was trimmed away (a paused process, a restore, a flush) is told so
by ``since`` and rebuilds from a snapshot of the bank.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterable

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from hashsvc.models import Change
from hashsvc.store import keys
from hashsvc.store.client import text, text_list, text_map

START = "0-0"
DEFAULT_RETENTION = 1_000_000
_SCAN_BATCH = 10_000
_Entry = tuple[bytes | str | None, dict[bytes | str, bytes | str] | None]  # XRANGE's, as typed


class StreamGap(Exception):
    """The stream no longer holds the reader's cursor entry: changes may have been missed."""


def append_change(tx: Pipeline, op: str, signal: str, hash_id: int, retention: int) -> None:
    """Queue one change (``op`` "add" or "remove") in the caller's transaction, trimming
    the stream to about ``retention`` entries."""
    tx.xadd(
        keys.CHANGES,
        {"op": op, "signal": signal, "id": hash_id},
        maxlen=retention,
        approximate=True,
    )


class ChangeStream:
    """Reads the change stream and bank snapshots for replicas."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def head(self) -> str:
        """The id of the newest change (``START`` when there is none)."""
        last = await self._redis.xrevrange(keys.CHANGES, count=1)
        return str(last[0][0]) if last else START

    async def since(self, cursor: str, count: int = 10_000) -> tuple[list[Change], str]:
        """Changes strictly after ``cursor`` (at most ``count``) and the new cursor; adds come
        with their codes, read from the bank. Raises ``StreamGap`` when the cursor's own entry
        is gone (entries are only ever trimmed from the old end, so its presence proves that
        nothing after it was missed)."""
        entries = await self._redis.xrange(keys.CHANGES, min=cursor, count=count + 1) or []
        if cursor != START:
            if not entries or text(entries[0][0]) != cursor:
                raise StreamGap(cursor)
            entries = entries[1:]
        changes = await self._resolve(entries)
        return changes, (text(entries[-1][0] or cursor) if entries else cursor)

    async def page(self, cursor: str, count: int, retention: int) -> tuple[list[Change], str, bool]:
        """Like ``since`` for the partner feed: at most ``count`` changes strictly after
        ``cursor``, the new cursor, and whether more follow. From ``START`` too a trimmed
        stream raises ``StreamGap``: trimming never leaves fewer than ``retention`` entries
        and nothing else shortens the stream, so one shorter than that was never trimmed."""
        entries = await self._redis.xrange(keys.CHANGES, min=cursor, count=count + 2) or []
        if cursor != START:
            if not entries or text(entries[0][0]) != cursor:
                raise StreamGap(cursor)
            entries = entries[1:]
        more = len(entries) > count
        entries = entries[:count]
        changes = await self._resolve(entries)
        # Read after the range: the stream only grows until a trim, which leaves it this long.
        if cursor == START and await self._redis.xlen(keys.CHANGES) >= retention:
            raise StreamGap(cursor)
        return changes, (text(entries[-1][0]) if entries else cursor), more

    async def _resolve(self, entries: list[_Entry]) -> list[Change]:
        """Stream entries as changes, adds with their codes read from the bank (an add whose
        code is gone was withdrawn later in the stream: read as a remove)."""
        parsed = [text_map(raw_fields) for _, raw_fields in entries]
        adds = [i for i, fields in enumerate(parsed) if fields["op"] == "add"]
        async with self._redis.pipeline(transaction=False) as pipe:
            for i in adds:
                pipe.hget(keys.bank(parsed[i]["signal"]), parsed[i]["id"])
            codes = dict(zip(adds, await pipe.execute(), strict=True))
        changes = []
        for i, fields in enumerate(parsed):
            code = bytes.fromhex(text(codes[i])) if codes.get(i) else None
            op = "add" if code is not None else "remove"
            changes.append(Change(op, fields["signal"], int(fields["id"]), code))
        return changes

    async def snapshot(self, signal: str) -> AsyncIterator[list[tuple[int, bytes]]]:
        """The bank of one signal, in batches of (hash_id, code)."""
        batch: list[tuple[int, bytes]] = []
        async for hash_id, code_hex in self._redis.hscan_iter(keys.bank(signal), count=_SCAN_BATCH):
            batch.append((int(hash_id), bytes.fromhex(code_hex)))
            if len(batch) >= _SCAN_BATCH:
                yield batch
                batch = []
        if batch:
            yield batch

    async def last_hash_id(self) -> int:
        """The highest hash id issued so far (0 when none): every bank id is at most this."""
        return int(await self._redis.get(keys.HASH_ID_SEQUENCE) or 0)

    async def bank_range(
        self, signals: Iterable[str], first: int, stop: int
    ) -> list[tuple[int, str, str]]:
        """The hashes of ids ``first`` to ``stop`` (excluded) still in the bank, as
        (hash_id, signal, lowercase hex code)."""
        ids = [str(i) for i in range(first, stop)]
        names = list(signals)
        async with self._redis.pipeline(transaction=False) as pipe:
            for signal in names:
                pipe.hmget(keys.bank(signal), ids)
            replies = await pipe.execute()
        return [
            (int(hash_id), signal, text(code))
            for signal, codes in zip(names, replies, strict=True)
            for hash_id, code in zip(ids, codes, strict=True)
            if code
        ]

    async def feed_id_key(self) -> bytes:
        """The secret key of the partner feed's opaque hash ids: random, made once, kept with
        the bank (ids must stay stable for as long as partners hold them)."""
        await self._redis.set(keys.FEED_ID_KEY, secrets.token_hex(32), nx=True)
        return bytes.fromhex(text(await self._redis.get(keys.FEED_ID_KEY)))

    async def owners(self, hash_ids: list[int]) -> list[str | None]:
        """The case owning each hash id (None for a hash withdrawn meanwhile)."""
        if not hash_ids:
            return []
        return text_list(await self._redis.hmget(keys.BANK_OWNER, [str(h) for h in hash_ids]))
