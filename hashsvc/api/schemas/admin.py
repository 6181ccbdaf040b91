"""Operator-facing models: platforms, their keys (never the secret after issue), the audit log."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from hashsvc.models import Credential, Platform
from hashsvc.store.audit import AuditEntry

PlatformScope = Literal["scan", "review", "feed"]


class PlatformCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    scopes: list[PlatformScope] | None = Field(
        default=None,
        min_length=1,
        max_length=3,
        description="Scopes of its first key (default scan, review).",
    )
    webhook_url: str | None = Field(default=None, max_length=2048)


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scopes: list[PlatformScope] | None = Field(default=None, min_length=1, max_length=3)


class KeyOut(BaseModel):
    key_id: str
    scopes: list[str]
    created_at: float

    @classmethod
    def of(cls, credential: Credential) -> KeyOut:
        return cls(
            key_id=credential.key_id,
            scopes=sorted(credential.scopes),
            created_at=credential.created_at,
        )


class KeyCreated(KeyOut):
    api_key: str = Field(description="Shown only in this response.")


class FlagCounts(BaseModel):
    """A platform's flags per status and per decision (what it did with them)."""

    statuses: dict[str, int]
    decisions: dict[str, int]


class PlatformOut(BaseModel):
    platform_id: str
    name: str
    created_at: float
    disabled: bool
    webhook_url: str | None
    file_root: str | None
    keys: list[KeyOut]
    flags: FlagCounts

    @classmethod
    def of(
        cls,
        platform: Platform,
        keys: list[Credential],
        flags: tuple[dict[str, int], dict[str, int]],
    ) -> PlatformOut:
        return cls(
            platform_id=platform.platform_id,
            name=platform.name,
            created_at=platform.created_at,
            disabled=platform.disabled,
            webhook_url=platform.webhook_url,
            file_root=platform.file_root,
            keys=[KeyOut.of(k) for k in keys],
            flags=FlagCounts(statuses=flags[0], decisions=flags[1]),
        )


class PlatformCreated(BaseModel):
    platform_id: str
    name: str
    key: KeyCreated
    webhook_secret: str | None = Field(description="Shown only in this response.")


class PlatformList(BaseModel):
    platforms: list[PlatformOut]


class AuditEntryOut(BaseModel):
    entry_id: str
    time: float
    actor: str
    action: str
    object: str
    request_id: str

    @classmethod
    def of(cls, entry: AuditEntry) -> AuditEntryOut:
        return cls(
            entry_id=entry.entry_id,
            time=entry.time,
            actor=entry.actor,
            action=entry.action,
            object=entry.object,
            request_id=entry.request_id,
        )


class AuditPage(BaseModel):
    entries: list[AuditEntryOut]
    next_before: str | None = Field(description="Pass as 'before' for the next page.")
