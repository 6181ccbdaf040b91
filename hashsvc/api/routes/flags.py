"""Platforms: review the flags raised on their own uploads and report what they did."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from hashsvc.api.deps import PlatformDep, StateDep
from hashsvc.api.schemas.common import ErrorResponse
from hashsvc.api.schemas.flags import DecisionIn, FlagOut, FlagPage
from hashsvc.errors import FlagNotFound, FlagWithdrawn
from hashsvc.models import FlagStatus

router = APIRouter(prefix="/v1/flags", tags=["flags"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    k: {"model": ErrorResponse} for k in (401, 404, 409, 422)
}
MAX_PAGE = 500


@router.get("", response_model=FlagPage, responses=_ERRORS)
async def list_flags(
    platform: PlatformDep,
    state: StateDep,
    status: FlagStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    before: Annotated[float | None, Query(description="Page: created strictly before")] = None,
) -> FlagPage:
    """The platform's own flags, newest first, optionally filtered by status."""
    flags = await state.store.flags.for_platform(
        platform.platform_id, status=status, limit=limit, before=before
    )
    next_before = flags[-1].created_at if len(flags) == limit else None
    return FlagPage(flags=[FlagOut.of(f) for f in flags], next_before=next_before)


@router.post("/{flag_id}/decision", response_model=FlagOut, responses=_ERRORS)
async def decide(flag_id: str, body: DecisionIn, platform: PlatformDep, state: StateDep) -> FlagOut:
    """Report what was done with the flagged content; the victim's case shows it."""
    previous = await state.store.flags.decide(platform.platform_id, flag_id, body.decision)
    if previous is None:
        raise FlagNotFound(flag_id)
    flags = await state.store.flags.get_many([flag_id])
    if previous == FlagStatus.WITHDRAWN.value:
        raise FlagWithdrawn(flag_id)
    return FlagOut.of(flags[0])
