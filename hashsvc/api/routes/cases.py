"""Victims: submit a case of hashes, follow it, withdraw it."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response, status

from hashsvc import cases
from hashsvc.api.auth import CaseCreationQuota, CaseDep, audit
from hashsvc.api.deps import StateDep
from hashsvc.api.schemas.cases import CaseCreate, CaseCreated, CaseStatusOut, MatchOut
from hashsvc.api.schemas.common import ErrorResponse, error_responses
from hashsvc.models import CaseStatus

_CASE_ERRORS: dict[int | str, dict[str, Any]] = {
    **error_responses(401, 429, 503),
    404: {"model": ErrorResponse, "description": "Unknown case, wrong secret or withdrawn"},
}

router = APIRouter(prefix="/v1/cases", tags=["cases"])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=CaseCreated,
    responses=error_responses(400, 413, 422, 429, 503),
    dependencies=[CaseCreationQuota],
)
async def create_case(body: CaseCreate, state: StateDep, response: Response) -> CaseCreated:
    """Register hashes computed on the victim's device. The secret is shown only here."""
    response.headers["Cache-Control"] = "no-store"  # the body carries the case secret
    images = [h.submitted() for h in body.hashes]
    videos = [[h.submitted() for h in video.frames] for video in body.videos]
    created = await cases.submit(images, videos, state.settings, state.store, state.trust)
    await audit(state, "victim", "case.create", created.case_id)
    return CaseCreated(
        case_id=created.case_id, secret=created.secret, hash_count=created.hash_count
    )


@router.get("/{case_id}", response_model=CaseStatusOut, responses=_CASE_ERRORS)
async def case_status(record: CaseDep, state: StateDep, response: Response) -> CaseStatusOut:
    """Status, hash counts and matches of one case (case secret as Bearer token)."""
    response.headers["Cache-Control"] = "no-store"
    flags = await state.store.flags.for_case(record.case_id)
    return CaseStatusOut(
        case_id=record.case_id,
        status=(
            CaseStatus.UNDER_REVIEW
            if await state.store.quarantine.case_under_review(record.case_id)
            else record.status
        ).value,
        created_at=record.created_at,
        hashes=record.hash_counts,
        videos=record.videos,
        matches=[
            MatchOut(
                platform=f.platform_name,
                matched_at=f.created_at,
                signal=f.signal,
                distance=f.distance,
                status=f.status.value,
                decision=f.decision.value,
                decided_at=f.decided_at,
            )
            for f in flags
        ],
    )


@router.delete("/{case_id}", status_code=status.HTTP_204_NO_CONTENT, responses=_CASE_ERRORS)
async def withdraw_case(record: CaseDep, state: StateDep) -> Response:
    """Withdraw the case: its hashes are deleted everywhere and stop matching at once."""
    await cases.withdraw(record, state.store)
    await audit(state, "victim", "case.withdraw", record.case_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
