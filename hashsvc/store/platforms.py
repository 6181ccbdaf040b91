"""Platforms: their records (name, file root, webhook settings, disabled flag); their keys live
in ``hashsvc.store.credentials``."""

from __future__ import annotations

import time
from typing import Any, cast

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from hashsvc.models import Credential, Platform
from hashsvc.store import keys
from hashsvc.store.client import text, text_map
from hashsvc.store.credentials import stage_issue


def _parse(platform_id: str, fields: dict[str, str]) -> Platform:
    return Platform(
        platform_id=platform_id,
        name=fields["name"],
        created_at=float(fields["created_at"]),
        file_root=fields.get("file_root") or None,
        webhook_url=fields.get("webhook_url") or None,
        disabled=fields.get("disabled") == "1",
    )


class PlatformStore:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def create(
        self,
        name: str,
        key_verifier: str,
        credential: Credential,
        *,
        file_root: str | None = None,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
    ) -> Platform:
        platform = Platform(
            platform_id=credential.owner,
            name=name,
            created_at=time.time(),
            file_root=file_root,
            webhook_url=webhook_url,
        )
        fields = {
            "name": name,
            "created_at": repr(platform.created_at),
            "file_root": file_root or "",
            "webhook_url": webhook_url or "",
            # The signing key must be usable to sign, so it is stored as is.
            "webhook_secret": webhook_secret or "",
        }
        async with self._redis.pipeline(transaction=True) as tx:
            tx.hset(keys.platform(platform.platform_id), mapping=cast(Any, fields))
            stage_issue(tx, key_verifier, credential)
            tx.sadd(keys.PLATFORMS, platform.platform_id)
            await tx.execute()
        return platform

    async def get(self, platform_id: str) -> Platform | None:
        return self.parse(platform_id, await self._redis.hgetall(keys.platform(platform_id)))

    @staticmethod
    def stage_get(pipe: Pipeline, platform_id: str) -> None:
        """Queue ``get`` in the caller's pipeline; read its reply with ``parse``."""
        pipe.hgetall(keys.platform(platform_id))

    @staticmethod
    def parse(platform_id: str, reply: Any) -> Platform | None:
        """The platform of a ``get``'s reply (None: unknown)."""
        fields = text_map(reply)
        return _parse(platform_id, fields) if fields else None

    async def webhook_secret(self, platform_id: str) -> str | None:
        found = await self._redis.hget(keys.platform(platform_id), "webhook_secret")
        return text(found) if found else None

    async def all(self) -> list[Platform]:
        """Every platform, oldest first."""
        ids = sorted(text(p) for p in await self._redis.smembers(keys.PLATFORMS))
        async with self._redis.pipeline(transaction=False) as pipe:
            for platform_id in ids:
                pipe.hgetall(keys.platform(platform_id))
            found = await pipe.execute()
        platforms = [_parse(p, text_map(f)) for p, f in zip(ids, found, strict=True) if f]
        return sorted(platforms, key=lambda p: (p.created_at, p.platform_id))

    async def set_disabled(self, platform_id: str, disabled: bool) -> bool:
        """Disable (every key refused) or enable a platform; False if unknown."""
        if not await self._redis.exists(keys.platform(platform_id)):
            return False
        await self._redis.hset(keys.platform(platform_id), "disabled", "1" if disabled else "")
        return True
