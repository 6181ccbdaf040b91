"""Platform and operator-key use-cases: register platforms, issue, list and revoke their keys,
disable them; issue operator (admin) keys. Keys are returned once and stored as verifiers."""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from hashsvc import egress
from hashsvc.config import Settings
from hashsvc.errors import BadRequest, PlatformNotFound
from hashsvc.models import DEFAULT_PLATFORM_SCOPES, PLATFORM_SCOPES, Credential, Platform, Scope
from hashsvc.security import (
    ADMIN_KEY,
    PLATFORM_KEY,
    new_admin_key,
    new_api_key,
    new_key_id,
    new_webhook_secret,
    verifier,
)
from hashsvc.store import Store
from hashsvc.store.credentials import admin_index, platform_index

MAX_NAME_LENGTH = 100


def resolve_file_root(path: Path) -> str:
    """The canonical (symlink-free) form of a platform's file root; it must be a directory."""
    if not path.is_dir():
        raise BadRequest(f"file root {str(path)!r} is not a directory")
    return os.path.realpath(path)


@dataclass(frozen=True)
class NewPlatform:
    platform: Platform
    api_key: str  # shown once
    key_id: str
    webhook_secret: str | None  # shown once


@dataclass(frozen=True)
class NewKey:
    credential: Credential
    api_key: str  # shown once


def platform_scopes(scopes: Iterable[str] | None) -> frozenset[Scope]:
    """Validated scopes of a platform key (the default set when none are given)."""
    if scopes is None:
        return DEFAULT_PLATFORM_SCOPES
    chosen = set()
    for scope in scopes:
        if scope not in PLATFORM_SCOPES:
            allowed = ", ".join(sorted(PLATFORM_SCOPES))
            raise BadRequest(f"unknown platform scope {scope!r}; allowed: {allowed}")
        chosen.add(Scope(scope))
    if not chosen:
        raise BadRequest("a key needs at least one scope")
    return frozenset(chosen)


async def register_platform(
    name: str,
    settings: Settings,
    store: Store,
    *,
    file_root: str | None = None,
    webhook_url: str | None = None,
    scopes: Iterable[str] | None = None,
) -> NewPlatform:
    """Create a platform; its API key and webhook secret are returned here only."""
    name = name.strip()
    if not name or len(name) > MAX_NAME_LENGTH:
        raise BadRequest(f"a platform name needs 1 to {MAX_NAME_LENGTH} characters")
    if webhook_url is not None:
        await egress.check_registration(webhook_url, settings)
    key = new_api_key()
    credential = Credential(
        key_id=new_key_id(),
        kind=PLATFORM_KEY,
        owner="p_" + secrets.token_hex(8),
        scopes=platform_scopes(scopes),
        created_at=time.time(),
    )
    secret = new_webhook_secret() if webhook_url else None
    platform = await store.platforms.create(
        name,
        verifier(key, settings.token_pepper.get_secret_value()),
        credential,
        file_root=file_root,
        webhook_url=webhook_url,
        webhook_secret=secret,
    )
    return NewPlatform(platform, key, credential.key_id, secret)


async def issue_platform_key(
    platform_id: str, settings: Settings, store: Store, scopes: Iterable[str] | None = None
) -> NewKey:
    """An extra key for a platform (rotation: issue a new key, move to it, revoke the old)."""
    if await store.platforms.get(platform_id) is None:
        raise PlatformNotFound(platform_id)
    scope_set = platform_scopes(scopes)
    return await _issue(
        new_api_key(),
        Credential(new_key_id(), PLATFORM_KEY, platform_id, scope_set, time.time()),
        settings,
        store,
    )


async def revoke_platform_key(platform_id: str, key_id: str, store: Store) -> None:
    """Revoke one key of a platform: refused by every process from the next request."""
    if await store.platforms.get(platform_id) is None:
        raise PlatformNotFound(platform_id)
    if not await store.credentials.revoke(platform_index(platform_id), key_id):
        raise PlatformNotFound(platform_id, key_id)


async def set_platform_disabled(platform_id: str, disabled: bool, store: Store) -> Platform:
    """Disable (every key refused at once) or re-enable a platform."""
    if not await store.platforms.set_disabled(platform_id, disabled):
        raise PlatformNotFound(platform_id)
    platform = await store.platforms.get(platform_id)
    assert platform is not None
    return platform


async def create_admin_key(label: str, settings: Settings, store: Store) -> NewKey:
    """An operator key (scope admin), named by ``label`` in the audit log."""
    label = label.strip()
    if not label or len(label) > MAX_NAME_LENGTH:
        raise BadRequest(f"an operator key label needs 1 to {MAX_NAME_LENGTH} characters")
    credential = Credential(new_key_id(), ADMIN_KEY, label, frozenset({Scope.ADMIN}), time.time())
    return await _issue(new_admin_key(), credential, settings, store)


async def revoke_admin_key(key_id: str, store: Store) -> None:
    """Revoke an operator key: refused by every process from the next request."""
    if not await store.credentials.revoke(admin_index(), key_id):
        raise BadRequest(f"no operator key {key_id!r}")


async def _issue(key: str, credential: Credential, settings: Settings, store: Store) -> NewKey:
    await store.credentials.issue(
        verifier(key, settings.token_pepper.get_secret_value()), credential
    )
    return NewKey(credential, key)
