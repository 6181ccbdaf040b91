"""Platforms: their API keys (stored only as verifiers), file root and webhook settings."""

from __future__ import annotations

import secrets
import time
from typing import Any, cast

from redis.asyncio import Redis

from hashsvc.models import Platform
from hashsvc.store import keys
from hashsvc.store.client import text, text_map


def _parse(platform_id: str, fields: dict[str, str]) -> Platform:
    return Platform(
        platform_id=platform_id,
        name=fields["name"],
        created_at=float(fields["created_at"]),
        file_root=fields.get("file_root") or None,
        webhook_url=fields.get("webhook_url") or None,
    )


class PlatformStore:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def create(
        self,
        name: str,
        key_verifier: str,
        *,
        file_root: str | None = None,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
    ) -> Platform:
        platform = Platform(
            platform_id="p_" + secrets.token_hex(8),
            name=name,
            created_at=time.time(),
            file_root=file_root,
            webhook_url=webhook_url,
        )
        fields = {
            "name": name,
            "key_verifier": key_verifier,
            "created_at": repr(platform.created_at),
            "file_root": file_root or "",
            "webhook_url": webhook_url or "",
            # The signing key must be usable to sign, so it is stored as is.
            "webhook_secret": webhook_secret or "",
        }
        async with self._redis.pipeline(transaction=True) as tx:
            tx.hset(keys.platform(platform.platform_id), mapping=cast(Any, fields))
            tx.hset(keys.PLATFORM_BY_VERIFIER, key_verifier, platform.platform_id)
            tx.sadd(keys.PLATFORMS, platform.platform_id)
            await tx.execute()
        return platform

    async def get(self, platform_id: str) -> Platform | None:
        fields = text_map(await self._redis.hgetall(keys.platform(platform_id)))
        return _parse(platform_id, fields) if fields else None

    async def webhook_secret(self, platform_id: str) -> str | None:
        found = await self._redis.hget(keys.platform(platform_id), "webhook_secret")
        return text(found) if found else None

    async def by_key_verifier(self, key_verifier: str) -> tuple[Platform, str] | None:
        """The platform holding this key, with its stored verifier for a constant-time check."""
        found = await self._redis.hget(keys.PLATFORM_BY_VERIFIER, key_verifier)
        if found is None:
            return None
        platform_id = text(found)
        fields = text_map(await self._redis.hgetall(keys.platform(platform_id)))
        if not fields:
            return None
        return _parse(platform_id, fields), fields["key_verifier"]
