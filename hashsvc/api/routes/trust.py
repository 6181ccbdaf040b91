"""Operators (admin keys): the quarantine queue, stored-hash history, the allow-list bank and
bank statistics. Every state change is audited (actor ``admin:<key id>``)."""

from __future__ import annotations

from typing import Annotated

import anyio.to_thread
from fastapi import APIRouter, Path, Query, Request, Response, status

from hashsvc import cases
from hashsvc.api.auth import AdminDep, audit
from hashsvc.api.bodies import is_media_upload, parse_json, read_body, read_media
from hashsvc.api.deps import StateDep
from hashsvc.api.schemas.common import error_responses, upload_request_body
from hashsvc.api.schemas.trust import (
    AllowEntryOut,
    AllowList,
    AllowListAdded,
    AllowListCreate,
    BankStats,
    HashOut,
    QuarantinePage,
)
from hashsvc.errors import BadRequest, InvalidRequest, LowInformationHash
from hashsvc.hashing import FULL_VIEW, informative
from hashsvc.media import is_video
from hashsvc.models import HashEntry
from hashsvc.store.quarantine import HashTrust, hash_ref
from hashsvc.trust import AllowEntryNotFound, Quarantined

router = APIRouter(prefix="/v1/admin", tags=["admin"])
MAX_PAGE = 100
_ERRORS = error_responses(401, 403, 404, 422, 429, 503)
_CHANGE_ERRORS = error_responses(401, 403, 404, 409, 422, 429, 503)
HashRef = Annotated[str, Path(pattern=r"^h[0-9]{1,20}$", description="A stored hash: h<bank id>")]
EntryId = Annotated[str, Path(pattern=r"^a[0-9]{1,20}$")]


async def _out(trust: HashTrust, state: StateDep) -> HashOut:
    owner = await state.store.cases.hash_owner(trust.hash_id)
    return HashOut.of(Quarantined(trust, *(owner or (None, None))))


@router.get("/quarantine", response_model=QuarantinePage, responses=_ERRORS)
async def quarantine_queue(
    admin: AdminDep,
    state: StateDep,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> QuarantinePage:
    """Quarantined stored hashes, oldest first: why, matches, platforms, decisions, case."""
    found = await state.trust.queue(limit=limit, offset=offset)
    total = await state.store.quarantine.count()
    next_offset = offset + limit if offset + limit < total else None
    return QuarantinePage(
        hashes=[HashOut.of(q) for q in found], total=total, next_offset=next_offset
    )


@router.post("/quarantine/{hash_ref}/release", response_model=HashOut, responses=_CHANGE_ERRORS)
async def release(hash_ref: HashRef, admin: AdminDep, state: StateDep) -> HashOut:
    """Back to active: the hash raises flags again (its breaker window starts afresh)."""
    trust = await state.trust.release(hash_ref)
    await audit(state, admin.actor, "hash.release", hash_ref)
    return await _out(trust, state)


@router.post("/quarantine/{hash_ref}/confirm", response_model=HashOut, responses=_CHANGE_ERRORS)
async def confirm(hash_ref: HashRef, admin: AdminDep, state: StateDep) -> HashOut:
    """Active, and never quarantined automatically again (until reset)."""
    trust = await state.trust.confirm(hash_ref)
    await audit(state, admin.actor, "hash.confirm", hash_ref)
    return await _out(trust, state)


@router.post("/hashes/{hash_ref}/reset", response_model=HashOut, responses=_CHANGE_ERRORS)
async def reset(hash_ref: HashRef, admin: AdminDep, state: StateDep) -> HashOut:
    """A confirmed hash back to active: automatic quarantine applies to it again."""
    trust = await state.trust.reset(hash_ref)
    await audit(state, admin.actor, "hash.reset", hash_ref)
    return await _out(trust, state)


@router.get("/hashes/{hash_ref}", response_model=HashOut, responses=_ERRORS)
async def hash_history(hash_ref: HashRef, admin: AdminDep, state: StateDep) -> HashOut:
    """One stored hash: its case, state, matches per platform, decisions per platform."""
    return HashOut.of(await state.trust.history(hash_ref))


_ALLOW_BODY = upload_request_body(AllowListCreate, "image/*")


async def _allow_entries(request: Request, state: StateDep) -> tuple[list[HashEntry], str]:
    content_type = request.headers.get("content-type", "").lower()
    settings = state.settings
    if content_type.startswith("application/json"):
        parsed = parse_json(AllowListCreate, await read_body(request))
        items = [h.submitted() for h in parsed.hashes]
        return cases.validate_hashes(items, settings, check_information=False), parsed.label
    if not is_media_upload(content_type):
        raise BadRequest(
            "unsupported Content-Type: send application/json hashes, multipart/form-data "
            "with a 'file' field, or a raw image body"
        )
    data = await read_media(request)
    if is_video(data[:64]):
        raise InvalidRequest("videos cannot be allow-listed: send pictures (or their hashes)")
    label = request.query_params.get("label", "")[:200]
    from hashsvc.sandbox import shared_pool  # not at top: the sandbox imports hashing

    media = await anyio.to_thread.run_sync(
        lambda: shared_pool(settings).hash_media(data, settings, upload=False)
    )
    frame = [h for h in media.frames[0] if h.variant == FULL_VIEW]
    if not informative(frame, settings.pdq_min_quality):
        raise LowInformationHash("this picture is flat or nearly flat: it matches nothing")
    return [HashEntry(h.signal, h.code) for h in frame], label


@router.post(
    "/allowlist",
    status_code=status.HTTP_201_CREATED,
    response_model=AllowListAdded,
    openapi_extra={"requestBody": _ALLOW_BODY},
    responses=error_responses(400, 401, 403, 413, 422, 429, 503),
)
async def add_allowlisted(request: Request, admin: AdminDep, state: StateDep) -> AllowListAdded:
    """Add hashes of known-benign content (JSON ``{hashes, label}``, or an image hashed here in
    the sandbox, ``?label=``). Victim hashes within threshold of them are refused at
    submission, scans of such content raise no flag, and stored hashes within the PDQ
    threshold are quarantined for review."""
    entries, label = await _allow_entries(request, state)
    ids, quarantined = await state.trust.add_allowlisted(
        entries, state.replicas, actor=admin.actor, label=label
    )
    for entry_id in ids:
        await audit(state, admin.actor, "allowlist.add", entry_id)
    listed = {e.entry_id: e for e in await state.store.allowlist.entries()}
    return AllowListAdded(
        entries=[AllowEntryOut.of(listed[i]) for i in ids if i in listed],
        quarantined=[hash_ref(h) for h in quarantined],
    )


@router.get("/allowlist", response_model=AllowList, responses=_ERRORS)
async def list_allowlisted(admin: AdminDep, state: StateDep) -> AllowList:
    return AllowList(entries=[AllowEntryOut.of(e) for e in await state.store.allowlist.entries()])


@router.delete("/allowlist/{entry_id}", status_code=status.HTTP_204_NO_CONTENT, responses=_ERRORS)
async def remove_allowlisted(entry_id: EntryId, admin: AdminDep, state: StateDep) -> Response:
    """Remove an entry (every process reloads its copy at its next use of the allow-list).
    Hashes it quarantined stay quarantined until an operator decides."""
    if not await state.store.allowlist.remove(entry_id):
        raise AllowEntryNotFound(entry_id)
    await audit(state, admin.actor, "allowlist.remove", entry_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/stats", response_model=BankStats, responses=_ERRORS)
async def bank_stats(admin: AdminDep, state: StateDep) -> BankStats:
    """Bank statistics: hashes, cases, flags per status and decision, quarantine, allow-list."""
    return BankStats(**await state.trust.stats())
