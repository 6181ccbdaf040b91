"""Start-up check of the store's durability: an acknowledged case must survive a Redis crash,
which needs append-only persistence. The embedded Redis always has it; an external one is
checked, and refused in production mode when it does not."""

from __future__ import annotations

import asyncio
import logging

from hashsvc.config import Settings
from hashsvc.errors import HashsvcError
from hashsvc.store import Store

logger = logging.getLogger(__name__)


class NotDurable(HashsvcError):
    code = "not_durable"
    status = 500


async def check_durability(store: Store, settings: Settings) -> dict[str, str]:
    """Redis's persistence settings; raises ``NotDurable`` in production mode when AOF is off."""
    info = await store.persistence()
    if info.get("aof_enabled") != "1":
        message = (
            "Redis runs without append-only persistence (appendonly no): acknowledged cases "
            "would be lost in a crash. Enable it with `CONFIG SET appendonly yes` (and in "
            "redis.conf), or unset REDIS_URL to use the embedded Redis."
        )
        if settings.production:
            raise NotDurable(message)
        logger.warning("%s (allowed outside production mode)", message)
    return info


def preflight(settings: Settings, redis_url: str) -> None:
    """The check above, from synchronous start-up code (the CLI, the worker main)."""

    async def check() -> None:
        store = Store.open(redis_url)
        try:
            await check_durability(store, settings)
        finally:
            await store.close()

    asyncio.run(check())
