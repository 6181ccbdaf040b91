"""Operators (admin keys): platforms, their keys, and the audit log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from hashsvc import platforms
from hashsvc.api.auth import AdminDep, audit
from hashsvc.api.deps import StateDep
from hashsvc.api.schemas.admin import (
    AuditEntryOut,
    AuditPage,
    KeyCreate,
    KeyCreated,
    KeyOut,
    PlatformCreate,
    PlatformCreated,
    PlatformList,
    PlatformOut,
)
from hashsvc.api.schemas.common import error_responses
from hashsvc.errors import PlatformNotFound
from hashsvc.models import Platform
from hashsvc.store.credentials import platform_index

router = APIRouter(prefix="/v1/admin", tags=["admin"])
MAX_PAGE = 100
_ERRORS = error_responses(401, 403, 404, 422, 429, 503)
_AUDIT_ID = r"^\d{1,20}-\d{1,20}$"


async def _described(platform: Platform, state: StateDep) -> PlatformOut:
    keys = await state.store.credentials.of_owner(platform_index(platform.platform_id))
    flags = await state.store.flags.tally([platform.platform_id])
    return PlatformOut.of(platform, keys, flags)


async def _platform(platform_id: str, state: StateDep) -> Platform:
    platform = await state.store.platforms.get(platform_id)
    if platform is None:
        raise PlatformNotFound(platform_id)
    return platform


@router.post(
    "/platforms",
    status_code=status.HTTP_201_CREATED,
    response_model=PlatformCreated,
    responses=error_responses(400, 401, 403, 422, 429, 503),
)
async def create_platform(
    body: PlatformCreate, admin: AdminDep, state: StateDep, response: Response
) -> PlatformCreated:
    """Register a platform; its first API key (and webhook secret) are shown only here.
    File roots are set on the host with the CLI, never over HTTP."""
    response.headers["Cache-Control"] = "no-store"
    created = await platforms.register_platform(
        body.name, state.settings, state.store, webhook_url=body.webhook_url, scopes=body.scopes
    )
    platform_id = created.platform.platform_id
    await audit(state, admin.actor, "platform.create", platform_id)
    keys = await state.store.credentials.of_owner(platform_index(platform_id))
    return PlatformCreated(
        platform_id=platform_id,
        name=created.platform.name,
        key=KeyCreated(**KeyOut.of(keys[0]).model_dump(), api_key=created.api_key),
        webhook_secret=created.webhook_secret,
    )


@router.get("/platforms", response_model=PlatformList, responses=_ERRORS)
async def list_platforms(admin: AdminDep, state: StateDep) -> PlatformList:
    """Every platform with its live keys (ids and scopes only)."""
    return PlatformList(
        platforms=[await _described(p, state) for p in await state.store.platforms.all()]
    )


@router.get("/platforms/{platform_id}", response_model=PlatformOut, responses=_ERRORS)
async def get_platform(platform_id: str, admin: AdminDep, state: StateDep) -> PlatformOut:
    return await _described(await _platform(platform_id, state), state)


@router.post(
    "/platforms/{platform_id}/keys",
    status_code=status.HTTP_201_CREATED,
    response_model=KeyCreated,
    responses=error_responses(400, 401, 403, 404, 422, 429, 503),
)
async def issue_key(
    platform_id: str, body: KeyCreate, admin: AdminDep, state: StateDep, response: Response
) -> KeyCreated:
    """Issue another key (rotation: issue, switch the platform over, revoke the old one)."""
    response.headers["Cache-Control"] = "no-store"
    issued = await platforms.issue_platform_key(
        platform_id, state.settings, state.store, body.scopes
    )
    await audit(state, admin.actor, "key.issue", issued.credential.key_id)
    return KeyCreated(**KeyOut.of(issued.credential).model_dump(), api_key=issued.api_key)


@router.delete(
    "/platforms/{platform_id}/keys/{key_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=_ERRORS,
)
async def revoke_key(platform_id: str, key_id: str, admin: AdminDep, state: StateDep) -> Response:
    """Revoke a key: every process refuses it from the next request."""
    await platforms.revoke_platform_key(platform_id, key_id, state.store)
    await audit(state, admin.actor, "key.revoke", key_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/platforms/{platform_id}/disable", response_model=PlatformOut, responses=_ERRORS)
async def disable_platform(platform_id: str, admin: AdminDep, state: StateDep) -> PlatformOut:
    """Refuse every key of the platform at once (its keys stay listed; enable undoes it)."""
    platform = await platforms.set_platform_disabled(platform_id, True, state.store)
    await audit(state, admin.actor, "platform.disable", platform_id)
    return await _described(platform, state)


@router.post("/platforms/{platform_id}/enable", response_model=PlatformOut, responses=_ERRORS)
async def enable_platform(platform_id: str, admin: AdminDep, state: StateDep) -> PlatformOut:
    platform = await platforms.set_platform_disabled(platform_id, False, state.store)
    await audit(state, admin.actor, "platform.enable", platform_id)
    return await _described(platform, state)


@router.get("/audit", response_model=AuditPage, responses=_ERRORS)
async def read_audit(
    admin: AdminDep,
    state: StateDep,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    before: Annotated[str | None, Query(pattern=_AUDIT_ID, description="Page: older than")] = None,
) -> AuditPage:
    """The audit log, newest first: actor, action, object id, request id (never a secret)."""
    entries = await state.store.audit.read(limit=limit, before=before)
    next_before = entries[-1].entry_id if len(entries) == limit else None
    return AuditPage(entries=[AuditEntryOut.of(e) for e in entries], next_before=next_before)
