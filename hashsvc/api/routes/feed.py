"""Partners: the bank as a snapshot, then its adds and withdrawals (platform keys, scope feed).

Reads only: not audited."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from hashsvc import feed
from hashsvc.api.auth import FeedReaderDep
from hashsvc.api.deps import StateDep
from hashsvc.api.schemas.common import error_responses
from hashsvc.api.schemas.feed import FeedPageOut, SnapshotPageOut
from hashsvc.signals import SIGNALS
from hashsvc.store.changes import START

router = APIRouter(prefix="/v1/hashes", tags=["feed"])

_CURSOR = r"^(0|[0-9]{1,19}-[0-9]{1,19})$"  # 19 digits: always within Redis's 64 bits
_PAGE = r"^[A-Za-z0-9_-]{1,128}$"


@router.get(
    "/snapshot",
    response_model=SnapshotPageOut,
    responses=error_responses(400, 401, 403, 422, 429, 503),
)
async def snapshot(
    platform: FeedReaderDep,
    state: StateDep,
    page: Annotated[
        str | None, Query(pattern=_PAGE, description="The previous page's next_page")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=feed.MAX_PAGE)] = feed.MAX_PAGE,
) -> SnapshotPageOut:
    """The bank (every signal), page by page in no particular order; the first page also
    gives the feed cursor to follow once every page is stored."""
    return SnapshotPageOut.of(await feed.snapshot_page(state.store, SIGNALS, page, limit))


@router.get(
    "/feed",
    response_model=FeedPageOut,
    response_model_exclude_none=True,
    responses=error_responses(401, 403, 410, 422, 429, 503),
)
async def changes(
    platform: FeedReaderDep,
    state: StateDep,
    cursor: Annotated[
        str,
        Query(
            pattern=_CURSOR,
            description="A snapshot's resume_cursor or the previous page's next_cursor "
            "(0: from the first change, while the feed still holds it)",
        ),
    ],
    limit: Annotated[int, Query(ge=1, le=feed.MAX_PAGE)] = feed.MAX_PAGE,
) -> FeedPageOut:
    """Adds and withdrawals strictly after the cursor, in commit order; a withdrawal is a
    tombstone (op remove). 410 cursor_expired: take a new snapshot."""
    position = START if cursor == "0" else cursor
    retention = state.settings.change_stream_retention
    return FeedPageOut.of(await feed.feed_page(state.store, position, limit, retention))
