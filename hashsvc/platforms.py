"""Platform use-cases: register a platform and issue its API key (stored only as a verifier)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from hashsvc.config import Settings
from hashsvc.errors import BadRequest
from hashsvc.models import Platform
from hashsvc.security import new_api_key, new_webhook_secret, verifier
from hashsvc.store import Store

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
    webhook_secret: str | None  # shown once


async def register_platform(
    name: str,
    settings: Settings,
    store: Store,
    *,
    file_root: str | None = None,
    webhook_url: str | None = None,
) -> NewPlatform:
    """Create a platform; its API key and webhook secret are returned here only."""
    name = name.strip()
    if not name or len(name) > MAX_NAME_LENGTH:
        raise BadRequest(f"a platform name needs 1 to {MAX_NAME_LENGTH} characters")
    if webhook_url is not None and urlsplit(webhook_url).scheme not in ("http", "https"):
        raise BadRequest("the webhook URL must be http:// or https://")
    key = new_api_key()
    secret = new_webhook_secret() if webhook_url else None
    platform = await store.platforms.create(
        name,
        verifier(key, settings.token_pepper.get_secret_value()),
        file_root=file_root,
        webhook_url=webhook_url,
        webhook_secret=secret,
    )
    return NewPlatform(platform, key, secret)
