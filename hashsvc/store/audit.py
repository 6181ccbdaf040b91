"""The append-only audit log: who changed what, when, under which request id.

Entries name actors and objects by their public ids (platform id, key id, case id, flag id,
job id) and never carry a secret, a key, a hash or image content. The stream is never trimmed
by hashsvc; retention is an operator's decision.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from redis.asyncio import Redis

from hashsvc.store import keys
from hashsvc.store.client import text, text_map


@dataclass(frozen=True)
class AuditEntry:
    entry_id: str
    time: float
    actor: str  # "victim", "platform:<id>", "admin:<key id>", "cli"
    action: str  # e.g. "case.create", "key.revoke"
    object: str  # the public id acted on
    request_id: str  # "" outside HTTP requests


class AuditLog:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def record(self, actor: str, action: str, object_id: str, request_id: str = "") -> None:
        await self._redis.xadd(
            keys.AUDIT,
            {
                "time": repr(time.time()),
                "actor": actor,
                "action": action,
                "object": object_id,
                "request_id": request_id,
            },
        )

    async def read(self, *, limit: int, before: str | None = None) -> list[AuditEntry]:
        """The newest entries first, strictly before the entry id ``before`` (``ms-seq``, as
        the API's pattern admits: any digits) when given."""
        upper = "+" if before is None else _exclusive_upper(before)
        if upper is None:
            return []
        raw = await self._redis.xrevrange(keys.AUDIT, max=upper, min="-", count=limit)
        entries = []
        for entry_id, raw_fields in raw or []:
            fields = text_map(raw_fields)
            entries.append(
                AuditEntry(
                    entry_id=text(entry_id),
                    time=float(fields["time"]),
                    actor=fields["actor"],
                    action=fields["action"],
                    object=fields["object"],
                    request_id=fields["request_id"],
                )
            )
        return entries

    async def count(self) -> int:
        return int(await self._redis.xlen(keys.AUDIT))


_MAX_ID_PART = 2**64 - 1


def _exclusive_upper(before: str) -> str | None:
    """The XREVRANGE ``max`` for "strictly before ``before``", or None when nothing can be
    (0-0). Parts past the largest stream id are clamped (Redis refuses them)."""
    head, _, tail = before.partition("-")
    millis, sequence = int(head), int(tail)
    if millis > _MAX_ID_PART:
        return "+"
    if sequence > _MAX_ID_PART:
        return f"{millis}-{_MAX_ID_PART}"
    if millis == sequence == 0:
        return None
    return f"({millis}-{sequence}"
