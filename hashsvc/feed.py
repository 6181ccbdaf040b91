"""The partner hash feed: a snapshot of the bank, then its adds and withdrawals in commit order.

A partner takes a snapshot (pages of the bank, the change-stream position read *before* the
first page) and follows the feed from that position: a change both in the snapshot and after
the position is replayed harmlessly (adds are upserts, a remove of an unknown id a no-op).
Withdrawals are explicit tombstones; an add whose code is already gone is delivered as a
remove, so a consumer can never keep a withdrawn hash. A cursor the stream no longer holds is
refused (``CursorExpired``, 410), never skipped over.

Hashes are named by an opaque id, an HMAC of the internal id under a random key kept with the
bank: consecutive internal ids would tell which hashes were submitted together (one victim's
case). Snapshot pages walk the ids in fixed ranges and sort each range by opaque id, so no page
is in submission order.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass

from hashsvc.errors import BadRequest, HashsvcError
from hashsvc.store import Store
from hashsvc.store.changes import StreamGap

MAX_PAGE = 1000
ID_RANGE = 1024  # internal ids read per range; a snapshot page reads whole ranges
MAX_RANGES_PER_PAGE = 16  # bounds the work of one page when the bank is sparse
_TOKEN = re.compile(r"^([0-9]{1,19})\.([0-9]{1,19})\.([0-9a-f]{0,32})$")


class CursorExpired(HashsvcError):
    """The change stream no longer holds the cursor: changes may have been trimmed unseen."""

    code = "cursor_expired"
    status = 410

    def __init__(self) -> None:
        super().__init__(
            "the feed no longer holds this cursor (too old, or unknown): take a new snapshot "
            "(GET /v1/hashes/snapshot) and follow the feed from its resume_cursor"
        )


@dataclass(frozen=True)
class FeedIds:
    """Opaque, stable ids: HMAC-SHA256 of the internal id, truncated to 128 bits (hex)."""

    key: bytes

    def of(self, hash_id: int) -> str:
        return hmac.new(self.key, str(hash_id).encode(), hashlib.sha256).hexdigest()[:32]


async def feed_ids(store: Store) -> FeedIds:
    return FeedIds(await store.changes.feed_id_key())


@dataclass(frozen=True)
class BankItem:
    id: str
    signal: str
    hash: str


@dataclass(frozen=True)
class SnapshotPage:
    items: list[BankItem]
    next_page: str | None
    resume_cursor: str | None  # first page only


@dataclass(frozen=True)
class FeedChange:
    op: str  # "add" | "remove"
    id: str
    signal: str
    hash: str | None  # adds only


@dataclass(frozen=True)
class FeedPage:
    changes: list[FeedChange]
    next_cursor: str
    has_more: bool


def _by_id(item: BankItem) -> str:
    return item.id


def _encode_page(start: int, end: int, after: str) -> str:
    raw = f"{start}.{end}.{after}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_page(token: str) -> tuple[int, int, str]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raw = ""
    found = _TOKEN.match(raw)
    if not found:
        raise BadRequest("malformed page token: pass back the next_page of a snapshot page")
    return int(found.group(1)), int(found.group(2)), found.group(3)


async def snapshot_page(
    store: Store, signals: Iterable[str], page: str | None, limit: int
) -> SnapshotPage:
    """One page of the bank. The first page (``page`` None) reads the change-stream head, then
    the last issued hash id: an id issued later was committed after that head, so the feed
    from it delivers it; the snapshot ends at that id."""
    names = list(signals)
    resume = None
    if page is None:
        resume = await store.changes.head()
        start, end, after = 1, await store.changes.last_hash_id(), ""
    else:
        start, end, after = _decode_page(page)
    ids = await feed_ids(store)
    items: list[BankItem] = []
    ranges = 0
    while start <= end and len(items) < limit and ranges < MAX_RANGES_PER_PAGE:
        stop = min(start + ID_RANGE, end + 1)
        rows = await store.changes.bank_range(names, start, stop)
        found = sorted((BankItem(ids.of(h), signal, code) for h, signal, code in rows), key=_by_id)
        rest = [item for item in found if item.id > after]
        taken = rest[: limit - len(items)]
        items += taken
        if len(taken) < len(rest):  # the page is full inside this range
            after = taken[-1].id
            break
        start, after, ranges = stop, "", ranges + 1
    next_page = _encode_page(start, end, after) if start <= end else None
    return SnapshotPage(items, next_page, resume)


async def feed_page(store: Store, cursor: str, limit: int, retention: int) -> FeedPage:
    """Changes strictly after ``cursor``, in commit order; raises ``CursorExpired``."""
    try:
        changes, next_cursor, more = await store.changes.page(cursor, limit, retention)
    except StreamGap:
        raise CursorExpired() from None
    ids = await feed_ids(store)
    return FeedPage(
        [
            FeedChange(
                change.op,
                ids.of(change.hash_id),
                change.signal,
                change.code.hex() if change.op == "add" and change.code is not None else None,
            )
            for change in changes
        ],
        next_cursor,
        more,
    )
