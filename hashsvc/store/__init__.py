"""The only Redis access layer: one ``Store`` composed of narrow stores per aggregate."""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

from hashsvc.store.allowlist import AllowListStore
from hashsvc.store.audit import AuditLog
from hashsvc.store.cases import CaseStore
from hashsvc.store.changes import DEFAULT_RETENTION, ChangeStream
from hashsvc.store.client import connect
from hashsvc.store.credentials import CredentialStore
from hashsvc.store.flags import FlagStore
from hashsvc.store.jobs import JobStore
from hashsvc.store.platforms import PlatformStore
from hashsvc.store.quarantine import QuarantineStore
from hashsvc.store.ratelimit import RateLimiter


@dataclass(frozen=True)
class Store:
    redis: Redis
    cases: CaseStore
    platforms: PlatformStore
    credentials: CredentialStore
    flags: FlagStore
    jobs: JobStore
    changes: ChangeStream
    rate_limits: RateLimiter
    audit: AuditLog
    quarantine: QuarantineStore
    allowlist: AllowListStore

    @classmethod
    def open(cls, url: str, *, change_retention: int = DEFAULT_RETENTION) -> Store:
        """Connect to Redis; ``change_retention`` bounds the change stream (see changes.py)."""
        redis = connect(url)
        raw = connect(url, decode=False)
        return cls(
            redis=redis,
            cases=CaseStore(redis, change_retention),
            platforms=PlatformStore(redis),
            credentials=CredentialStore(redis),
            flags=FlagStore(redis),
            jobs=JobStore(redis, raw),
            changes=ChangeStream(redis),
            rate_limits=RateLimiter(redis),
            audit=AuditLog(redis),
            quarantine=QuarantineStore(redis),
            allowlist=AllowListStore(redis),
        )

    async def ping(self) -> bool:
        return bool(await self.redis.ping())

    async def persistence(self) -> dict[str, str]:
        """Redis's INFO persistence section, as text (aof_enabled, rdb and AOF status...)."""
        info = await self.redis.info("persistence")
        return {str(k): str(v) for k, v in info.items()}

    async def close(self) -> None:
        await self.redis.aclose()
        await self.jobs.close()


__all__ = ["Store"]
