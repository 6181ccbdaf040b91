"""Index replicas: one in-memory ``HammingIndex`` per signal type, rebuilt from the bank and kept
current by replaying the change stream.

Redis is the truth, replicas are caches. ``catch_up`` is called before every lookup, so a scan
sees every case committed (or withdrawn) before the scan started, in any process. When the
stream no longer holds the replica's cursor (trimmed past it while the process was paused, a
restore, a flush), the replica rebuilds from the bank before answering.

Concurrent scans share their catch-ups (group commit): a caller joins the next *round* that has
not yet read the stream, so the read it waits for is sent after the caller arrived, and it sees
every change committed before; a hundred scans in flight cost a few stream reads, not a hundred
one after the other.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

import anyio.to_thread
import numpy as np

from hashsvc.index import HammingIndex
from hashsvc.models import Change
from hashsvc.signals import SignalType
from hashsvc.store.changes import START, ChangeStream, StreamGap

logger = logging.getLogger(__name__)


def _as_arrays(items: Mapping[int, bytes], nbytes: int) -> tuple[np.ndarray, np.ndarray]:
    ids = np.fromiter(items.keys(), dtype=np.int64, count=len(items))
    codes = np.frombuffer(b"".join(items.values()), dtype=np.uint8).reshape(len(items), nbytes)
    return ids, codes


def _bulk_load(index: HammingIndex, ids: np.ndarray, codes: np.ndarray) -> None:
    """Add a whole bank at once and wait for the merge that builds its tables."""
    index.add(ids, codes)
    index.compact()


class ReplicaSet:
    """The replicas of every signal type, sharing one change-stream cursor."""

    def __init__(self, changes: ChangeStream, signals: Mapping[str, SignalType]) -> None:
        self._changes = changes
        self._signals = dict(signals)
        self._indexes = {name: HammingIndex(bits=s.bits) for name, s in signals.items()}
        self._cursor = START
        self._lock = asyncio.Lock()
        self._next: asyncio.Future[None] | None = None  # the round that has not read yet
        self._rounds: set[asyncio.Task[None]] = set()
        self.rebuilds = 0  # after a gap in the change stream

    def index(self, signal: str) -> HammingIndex:
        return self._indexes[signal]

    @property
    def cursor(self) -> str:
        return self._cursor

    async def bootstrap(self) -> None:
        """Build every index off to the side from a bank snapshot, then swap them in."""
        async with self._lock:
            while True:
                cursor = await self._changes.head()
                fresh: dict[str, HammingIndex] = {}
                for name, signal in self._signals.items():
                    snapshot: dict[int, bytes] = {}
                    async for batch in self._changes.snapshot(name):
                        snapshot.update(batch)
                    index = HammingIndex(bits=signal.bits)
                    if snapshot:  # one bulk add, merged before the swap: searched by MIH
                        ids, codes = _as_arrays(snapshot, signal.bits // 8)
                        await anyio.to_thread.run_sync(_bulk_load, index, ids, codes)
                    fresh[name] = index
                self._indexes, self._cursor = fresh, cursor
                try:
                    await self._replay()
                    break
                except StreamGap:  # trimmed past the head while the snapshot was read
                    logger.warning("change stream moved on during the rebuild: again")
        logger.info(
            "index replicas built: %s",
            ", ".join(f"{n}={len(i)}" for n, i in self._indexes.items()),
        )

    async def catch_up(self) -> None:
        """Apply every change committed before this call (and maybe later ones); rebuild if
        the stream no longer continues from the cursor. Concurrent callers share rounds."""
        round_ = self._next
        if round_ is None:
            round_ = self._next = asyncio.get_running_loop().create_future()
            task = asyncio.ensure_future(self._round(round_))
            self._rounds.add(task)  # a reference until done; the future carries the outcome
            task.add_done_callback(self._rounds.discard)
        await asyncio.shield(round_)  # a cancelled caller leaves the round to the others

    async def _round(self, done: asyncio.Future[None]) -> None:
        try:
            async with self._lock:
                if self._next is done:
                    self._next = None  # from here on, newcomers need a read sent after them
                try:
                    await self._replay()
                    gap = False
                except StreamGap:
                    gap = True
            if gap:
                logger.warning("change stream no longer holds %s: rebuilding", self._cursor)
                self.rebuilds += 1
                await self.bootstrap()
        except BaseException as exc:  # Redis down, cancelled at shutdown: every waiter fails
            if self._next is done:
                self._next = None
            if isinstance(exc, asyncio.CancelledError):
                done.cancel()
            elif not done.done():
                done.set_exception(exc)
                done.exception()  # retrieved: nobody may be waiting any more
            if not isinstance(exc, Exception):
                raise
        else:
            done.set_result(None)

    async def _replay(self) -> None:
        while True:
            changes, cursor = await self._changes.since(self._cursor)
            if not changes:
                return
            self._apply(changes)
            self._cursor = cursor

    def _apply(self, changes: list[Change]) -> None:
        final: dict[str, dict[int, bytes | None]] = {}
        for change in changes:
            if change.signal in self._indexes:
                code = change.code if change.op == "add" else None
                final.setdefault(change.signal, {})[change.hash_id] = code
        for signal, states in final.items():
            index = self._indexes[signal]
            removed = [h for h, code in states.items() if code is None]
            if removed:
                index.remove(np.asarray(removed, dtype=np.int64))
            added = {h: code for h, code in states.items() if code is not None}
            if added:
                index.add(*_as_arrays(added, self._signals[signal].bits // 8))
