"""Platforms and their API keys, stored only as verifiers."""

from __future__ import annotations

import secrets
import time

from redis.asyncio import Redis

from hashsvc.models import Platform
from hashsvc.store import keys
from hashsvc.store.client import text, text_map


class PlatformStore:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def create(self, name: str, key_verifier: str) -> Platform:
        platform = Platform(
            platform_id="p_" + secrets.token_hex(8), name=name, created_at=time.time()
        )
        async with self._redis.pipeline(transaction=True) as tx:
            tx.hset(
                keys.platform(platform.platform_id),
                mapping={
                    "name": name,
                    "key_verifier": key_verifier,
                    "created_at": repr(platform.created_at),
                },
            )
            tx.hset(keys.PLATFORM_BY_VERIFIER, key_verifier, platform.platform_id)
            tx.sadd(keys.PLATFORMS, platform.platform_id)
            await tx.execute()
        return platform

    async def by_key_verifier(self, key_verifier: str) -> tuple[Platform, str] | None:
        """The platform holding this key, with its stored verifier for a constant-time check."""
        found = await self._redis.hget(keys.PLATFORM_BY_VERIFIER, key_verifier)
        if found is None:
            return None
        platform_id = text(found)
        fields = text_map(await self._redis.hgetall(keys.platform(platform_id)))
        if not fields:
            return None
        platform = Platform(platform_id, fields["name"], float(fields["created_at"]))
        return platform, fields["key_verifier"]
