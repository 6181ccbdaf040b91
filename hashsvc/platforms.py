"""Platform use-cases: register a platform and issue its API key (stored only as a verifier)."""

from __future__ import annotations

from hashsvc.config import Settings
from hashsvc.errors import BadRequest
from hashsvc.models import Platform
from hashsvc.security import new_api_key, verifier
from hashsvc.store import Store

MAX_NAME_LENGTH = 100


async def register_platform(name: str, settings: Settings, store: Store) -> tuple[Platform, str]:
    """Create a platform; returns it with its API key, which is never shown again."""
    name = name.strip()
    if not name or len(name) > MAX_NAME_LENGTH:
        raise BadRequest(f"a platform name needs 1 to {MAX_NAME_LENGTH} characters")
    key = new_api_key()
    platform = await store.platforms.create(
        name, verifier(key, settings.token_pepper.get_secret_value())
    )
    return platform, key
