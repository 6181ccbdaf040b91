"""Platforms: review the flags raised on their own uploads and report what they did."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from hashsvc.api.auth import ReviewerDep, audit
from hashsvc.api.deps import StateDep
from hashsvc.api.schemas.common import error_responses
from hashsvc.api.schemas.flags import DecisionIn, FlagOut, FlagPage
from hashsvc.errors import BadRequest, FlagNotFound, FlagWithdrawn
from hashsvc.models import FlagStatus

router = APIRouter(prefix="/v1/flags", tags=["flags"])

MAX_PAGE = 100


# The repr of a float timestamp (as next_cursor writes it), a colon, a flag id.
_CURSOR = r"^[0-9]{1,20}(\.[0-9]{1,20})?(e[+-][0-9]{1,3})?:f_[A-Za-z0-9_-]{1,64}$"


def _position(cursor: str | None) -> tuple[float, str] | None:
    if cursor is None:
        return None
    created_at, _, flag_id = cursor.partition(":")
    try:
        return float(created_at), flag_id
    except ValueError:
        raise BadRequest("malformed cursor: pass back the next_cursor of a page") from None


@router.get("", response_model=FlagPage, responses=error_responses(400, 401, 403, 422, 429, 503))
async def list_flags(
    platform: ReviewerDep,
    state: StateDep,
    status: FlagStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    cursor: Annotated[
        str | None, Query(pattern=_CURSOR, description="Page: the previous page's next_cursor")
    ] = None,
) -> FlagPage:
    """The platform's own flags, newest first, optionally filtered by status."""
    flags, position = await state.store.flags.for_platform(
        platform.platform_id, status=status, limit=limit, after=_position(cursor)
    )
    next_cursor = f"{position[0]!r}:{position[1]}" if position else None
    return FlagPage(flags=[FlagOut.of(f) for f in flags], next_cursor=next_cursor)


@router.post(
    "/{flag_id}/decision",
    response_model=FlagOut,
    responses=error_responses(400, 401, 403, 404, 409, 422, 429, 503),
)
async def decide(flag_id: str, body: DecisionIn, platform: ReviewerDep, state: StateDep) -> FlagOut:
    """Report what was done with the flagged content; the victim's case shows it."""
    previous = await state.store.flags.decide(platform.platform_id, flag_id, body.decision)
    if previous is None:
        raise FlagNotFound(flag_id)
    flags = await state.store.flags.get_many([flag_id])
    if previous == FlagStatus.WITHDRAWN.value:
        raise FlagWithdrawn(flag_id)
    await audit(state, f"platform:{platform.platform_id}", "flag.decide", flag_id)
    await state.trust.record_decision(flags[0])  # the feedback loop (hashsvc.trust)
    return FlagOut.of(flags[0])
