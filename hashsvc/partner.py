"""The reference consumer of the partner hash feed (``hashsvc sync``), run by a platform.

It keeps a replica of the bank in the platform's own Redis, under its own prefix
(``hashsvc-replica:v1:``): one HASH per signal of feed id -> hex code, and a state HASH (the
server, the feed cursor, a snapshot in progress). With no cursor, or when the server answers
410 (the feed no longer holds the cursor), it takes a snapshot into staging keys, page by
page, and swaps them in with the last page; then it follows the feed from the snapshot's
resume cursor. Every page is stored in one MULTI together with the position it brings the
replica to, so a consumer killed at any point resumes exactly where the last stored page left
it: no change lost, none applied twice. Each MULTI is guarded by WATCH on the state, so two
consumers sharing a replica by mistake cannot interleave pages (one starts over).

Hash lists can be exported (JSONL or CSV of ``{signal, hash}``, ThreatExchange-style signal
names and lowercase hex) and imported (kept apart from the synced bank, which a resync
replaces).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import WatchError

from hashsvc.signals import SIGNALS, get_signal
from hashsvc.store import keys
from hashsvc.store.client import text, text_map

logger = logging.getLogger(__name__)

PAGE_SIZE = 1000
# Replace the synced bank of one signal by its staging copy (or empty it: no staging key
# means the snapshot held no hash of that signal). A Lua script, so that it queues in MULTI.
_SWAP = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('RENAME', KEYS[1], KEYS[2])
else
  redis.call('DEL', KEYS[2])
end
return 1
"""


class FeedError(Exception):
    """The server refused a feed request (other than an expired cursor)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"server answered {status}: {message}")
        self.status = status


class CursorExpired(Exception):
    """410: the feed no longer holds the replica's cursor; a new snapshot is needed."""


class ReplicaMoved(Exception):
    """The replica's state changed under this consumer (another consumer on the same keys)."""


class FeedClient:
    """The two feed endpoints, for one server and API key (a platform key with scope feed)."""

    def __init__(self, server: str, api_key: str, http: httpx.AsyncClient) -> None:
        self.server = server.rstrip("/")
        self._http = http
        self._headers = {"Authorization": f"Bearer {api_key}"}

    async def snapshot(self, page: str | None, limit: int = PAGE_SIZE) -> dict[str, Any]:
        params = {"limit": str(limit), **({"page": page} if page is not None else {})}
        return await self._get("/v1/hashes/snapshot", params)

    async def feed(self, cursor: str, limit: int = PAGE_SIZE) -> dict[str, Any]:
        return await self._get("/v1/hashes/feed", {"cursor": cursor, "limit": str(limit)})

    async def _get(self, path: str, params: Mapping[str, str]) -> dict[str, Any]:
        response = await self._http.get(self.server + path, params=params, headers=self._headers)
        if response.status_code == 410:
            raise CursorExpired()
        if response.status_code >= 400:
            try:
                message = str(response.json()["error"]["message"])
            except (ValueError, KeyError, TypeError):
                message = response.text[:200]
            raise FeedError(response.status_code, message)
        body: dict[str, Any] = response.json()
        return body


@dataclass(frozen=True)
class ReplicaState:
    """Where a replica stands, as stored (``fields`` is the state HASH itself)."""

    fields: Mapping[str, str]

    @property
    def server(self) -> str | None:
        return self.fields.get("server")

    @property
    def cursor(self) -> str | None:
        """The feed cursor of the synced bank; None before the first snapshot is complete."""
        return self.fields.get("cursor")

    @property
    def snapshotting(self) -> bool:
        return self.fields.get("snapshot") == "1"

    @property
    def snapshot_page(self) -> str | None:
        """The next snapshot page to fetch; None for the first one."""
        return self.fields.get("snapshot_page")

    @property
    def snapshot_resume(self) -> str | None:
        return self.fields.get("snapshot_resume")


def canonical(signal: str, hex_code: str) -> str:
    """The lowercase hex of a code of a known signal; raises ``UnknownSignal``/``InvalidHash``."""
    return get_signal(signal).parse_hex(hex_code).hex()


class Replica:
    """The replica's keys in the platform's Redis."""

    def __init__(
        self,
        redis: Redis,
        prefix: str = keys.REPLICA_PREFIX,
        signals: Sequence[str] = tuple(SIGNALS),
    ) -> None:
        self._redis = redis
        self._prefix = prefix
        self._signals = tuple(signals)
        self._state_key = keys.replica_state(prefix)

    @property
    def signals(self) -> tuple[str, ...]:
        return self._signals

    async def state(self) -> ReplicaState:
        return ReplicaState(text_map(await self._redis.hgetall(self._state_key)))

    async def reset(self, expected: ReplicaState, server: str) -> ReplicaState:
        """Forget everything (another server's replica) and follow ``server``."""

        def queue(tx: Pipeline) -> None:
            for signal in self._signals:
                tx.delete(keys.replica_bank(self._prefix, signal))
                tx.delete(keys.replica_staging(self._prefix, signal))

        return await self._commit(expected, {"server": server}, queue)

    async def begin_snapshot(self, expected: ReplicaState) -> ReplicaState:
        """Start a snapshot into empty staging keys; the synced bank stays until the swap."""

        def queue(tx: Pipeline) -> None:
            for signal in self._signals:
                tx.delete(keys.replica_staging(self._prefix, signal))

        fields = {k: v for k, v in expected.fields.items() if not k.startswith("snapshot")}
        return await self._commit(expected, {**fields, "snapshot": "1"}, queue)

    async def store_snapshot_page(
        self,
        expected: ReplicaState,
        items: Iterable[Mapping[str, Any]],
        next_page: str | None,
        resume_cursor: str | None,
    ) -> ReplicaState:
        """Store one snapshot page and the next page to fetch; with the last page, swap the
        staging copy in and set the cursor to the snapshot's resume cursor."""
        resume = expected.snapshot_resume if expected.snapshot_page is not None else resume_cursor
        if resume is None:
            raise FeedError(200, "the first snapshot page carries no resume_cursor")
        staged = self._by_signal(items)
        fields = {k: v for k, v in expected.fields.items() if not k.startswith("snapshot")}
        if next_page is None:
            fields["cursor"] = resume
        else:
            fields.update(snapshot="1", snapshot_page=next_page, snapshot_resume=resume)

        def queue(tx: Pipeline) -> None:
            for signal, codes in staged.items():
                tx.hset(
                    keys.replica_staging(self._prefix, signal),
                    mapping={k: v for k, v in codes.items()},
                )
            if next_page is None:
                for signal in self._signals:
                    staging = keys.replica_staging(self._prefix, signal)
                    tx.eval(_SWAP, 2, staging, keys.replica_bank(self._prefix, signal))

        return await self._commit(expected, fields, queue)

    async def store_feed_page(
        self, expected: ReplicaState, changes: Sequence[Mapping[str, Any]], next_cursor: str
    ) -> ReplicaState:
        """Apply one feed page in order (adds are upserts, removes delete) and move the cursor."""
        ops: list[tuple[str, str, str | None]] = []  # signal, id, code (None: remove)
        for change in changes:
            signal, op = str(change["signal"]), str(change["op"])
            if op not in ("add", "remove"):
                raise FeedError(200, f"unknown feed operation {op!r}")
            if signal not in self._signals:
                continue  # a signal this consumer does not know: nothing of it is kept
            code = canonical(signal, str(change["hash"])) if op == "add" else None
            ops.append((signal, str(change["id"]), code))

        def queue(tx: Pipeline) -> None:
            for signal, hash_id, code in ops:
                bank = keys.replica_bank(self._prefix, signal)
                if code is not None:
                    tx.hset(bank, hash_id, code)
                else:
                    tx.hdel(bank, hash_id)

        return await self._commit(expected, {**expected.fields, "cursor": next_cursor}, queue)

    async def codes(self, signal: str) -> dict[str, str]:
        """The synced bank of one signal: feed id -> hex code."""
        return text_map(await self._redis.hgetall(keys.replica_bank(self._prefix, signal)))

    async def version(self) -> tuple[str, ...]:
        """Changes whenever the replica's content may have: the feed cursor (every stored page
        moves it) and the size of each imported list (imports only add)."""
        async with self._redis.pipeline(transaction=True) as tx:
            tx.hget(self._state_key, "cursor")
            for signal in self._signals:
                tx.hlen(keys.replica_imported(self._prefix, signal))
            cursor, *sizes = await tx.execute()
        return (text(cursor) if cursor is not None else "", *(str(n) for n in sizes))

    async def all_codes(self, signal: str) -> dict[str, str]:
        """The synced bank and the imported list of one signal: id -> hex code; imported
        hashes are named ``imported:<digest>``."""
        async with self._redis.pipeline(transaction=True) as tx:
            tx.hgetall(keys.replica_bank(self._prefix, signal))
            tx.hgetall(keys.replica_imported(self._prefix, signal))
            synced, imported = await tx.execute()
        return {
            **text_map(synced),
            **{f"imported:{k}": v for k, v in text_map(imported).items()},
        }

    async def hashes(self) -> AsyncIterator[tuple[str, str]]:
        """Every (signal, hex code) of the synced bank and the imported lists, once each."""
        for signal in self._signals:
            seen: set[str] = set()
            for key in (
                keys.replica_bank(self._prefix, signal),
                keys.replica_imported(self._prefix, signal),
            ):
                async for _, code in self._redis.hscan_iter(key, count=1000):
                    if text(code) not in seen:
                        seen.add(text(code))
                        yield signal, text(code)

    async def import_hashes(self, rows: Iterable[tuple[str, str]]) -> int:
        """Add (signal, hex) pairs to the imported lists (validated); returns how many."""
        by_signal: dict[str, dict[str, str]] = {}
        for signal, hex_code in rows:
            code = canonical(signal, hex_code)
            digest = hashlib.sha256(f"{signal}:{code}".encode()).hexdigest()[:32]
            by_signal.setdefault(signal, {})[digest] = code
        async with self._redis.pipeline(transaction=True) as tx:
            for signal, codes in by_signal.items():
                tx.hset(
                    keys.replica_imported(self._prefix, signal),
                    mapping={k: v for k, v in codes.items()},
                )
            await tx.execute()
        return sum(len(codes) for codes in by_signal.values())

    def _by_signal(self, items: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, str]]:
        staged: dict[str, dict[str, str]] = {}
        for item in items:
            signal = str(item["signal"])
            if signal in self._signals:
                staged.setdefault(signal, {})[str(item["id"])] = canonical(signal, item["hash"])
        return staged

    async def _commit(
        self,
        expected: ReplicaState,
        fields: Mapping[str, str],
        queue: Callable[[Pipeline], None],
    ) -> ReplicaState:
        """Queue the page's writes and the new state in one MULTI, if the state is still
        ``expected`` (else ``ReplicaMoved``)."""
        async with self._redis.pipeline(transaction=True) as tx:
            try:
                await tx.watch(self._state_key)
                if text_map(await tx.hgetall(self._state_key)) != dict(expected.fields):
                    raise ReplicaMoved()
                tx.multi()  # type: ignore[no-untyped-call]
                queue(tx)
                tx.delete(self._state_key)
                tx.hset(self._state_key, mapping={k: v for k, v in fields.items()})
                await tx.execute()
            except WatchError:
                raise ReplicaMoved() from None
        return ReplicaState(dict(fields))


@dataclass
class SyncReport:
    """What one ``sync_to_head`` did."""

    snapshots: int = 0
    pages: int = 0
    changes: int = 0
    cursor: str | None = None
    sizes: dict[str, int] = field(default_factory=dict)


async def sync_to_head(
    client: FeedClient, replica: Replica, page_size: int = PAGE_SIZE
) -> SyncReport:
    """Bring the replica up to the feed's current head: a snapshot first when it has no
    cursor, had one in progress, or the server answers 410; then feed pages until none is
    left."""
    report = SyncReport()
    while True:
        state = await replica.state()
        try:
            if state.server != client.server:
                await replica.reset(state, client.server)
            elif state.cursor is None or state.snapshotting:
                await _snapshot(client, replica, state, report, page_size)
            else:
                await _follow(client, replica, state, report, page_size)
                break
        except CursorExpired:
            logger.warning("the feed no longer holds the cursor: taking a new snapshot")
            await replica.begin_snapshot(await replica.state())
        except ReplicaMoved:
            logger.warning("the replica changed under this consumer: reading it again")
    final = await replica.state()
    report.cursor = final.cursor
    report.sizes = {s: len(await replica.codes(s)) for s in replica.signals}
    return report


async def _snapshot(
    client: FeedClient, replica: Replica, state: ReplicaState, report: SyncReport, limit: int
) -> None:
    if not state.snapshotting:
        state = await replica.begin_snapshot(state)
    while state.snapshotting:
        page = await client.snapshot(state.snapshot_page, limit)
        state = await replica.store_snapshot_page(
            state, page["items"], page["next_page"], page.get("resume_cursor")
        )
        report.pages += 1
    report.snapshots += 1


async def _follow(
    client: FeedClient, replica: Replica, state: ReplicaState, report: SyncReport, limit: int
) -> None:
    while True:
        assert state.cursor is not None
        page = await client.feed(state.cursor, limit)
        changes: list[dict[str, Any]] = page["changes"]
        if changes or page["next_cursor"] != state.cursor:
            state = await replica.store_feed_page(state, changes, str(page["next_cursor"]))
        report.pages += 1
        report.changes += len(changes)
        if not page["has_more"]:
            return


# Export and import: {signal, hash} lines.

FORMATS = ("jsonl", "csv")


def format_rows(rows: Iterable[tuple[str, str]], fmt: str) -> Iterator[str]:
    """Lines (with their newline) of ``rows`` as JSONL or CSV (header ``signal,hash``)."""
    if fmt == "jsonl":
        for signal, code in rows:
            yield json.dumps({"signal": signal, "hash": code}) + "\n"
        return
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(("signal", "hash"))
    for signal, code in rows:
        writer.writerow((signal, code))
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()


def parse_rows(lines: Iterable[str], fmt: str) -> Iterator[tuple[str, str]]:
    """(signal, hex) pairs from JSONL objects or CSV with a ``signal,hash`` header; raises
    ``ValueError`` naming the line of a malformed row."""
    if fmt == "jsonl":
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                yield str(row["signal"]).lower(), str(row["hash"])
            except (ValueError, KeyError, TypeError):
                raise ValueError(f"line {number}: expected {{'signal', 'hash'}}") from None
        return
    reader = csv.DictReader(lines)
    if reader.fieldnames is None or not {"signal", "hash"} <= set(reader.fieldnames):
        raise ValueError("line 1: expected a 'signal,hash' header")
    for number, record in enumerate(reader, 2):
        if not record.get("signal") or not record.get("hash"):
            raise ValueError(f"line {number}: expected a signal and a hash")
        yield record["signal"].strip().lower(), record["hash"].strip()
