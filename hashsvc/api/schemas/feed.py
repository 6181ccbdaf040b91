"""Partner feed models: bank snapshot pages and the change feed."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from hashsvc import feed

_ID = "Opaque, stable id of the hash: the same in the snapshot, its add and its removal."
_HASH = "Lowercase hex: 64 characters for pdq, 16 for phash."


class BankItemOut(BaseModel):
    id: str = Field(description=_ID, examples=["3f5c0b6e9d1a4c2b8e7f6a5d4c3b2a19"])
    signal: str = Field(examples=["pdq"])
    hash: str = Field(description=_HASH)


class SnapshotPageOut(BaseModel):
    items: list[BankItemOut]
    next_page: str | None = Field(description="Pass as 'page' for the next page; null: done.")
    resume_cursor: str | None = Field(
        description="First page only: follow GET /v1/hashes/feed from this cursor once every "
        "page is stored (the position was read before the snapshot)."
    )

    @classmethod
    def of(cls, page: feed.SnapshotPage) -> SnapshotPageOut:
        return cls(
            items=[BankItemOut(id=i.id, signal=i.signal, hash=i.hash) for i in page.items],
            next_page=page.next_page,
            resume_cursor=page.resume_cursor,
        )


class FeedChangeOut(BaseModel):
    op: Literal["add", "remove"] = Field(description="add (an upsert) or remove (a tombstone)")
    id: str = Field(description=_ID)
    signal: str
    hash: str | None = Field(default=None, description=_HASH + " Adds only.")


class FeedPageOut(BaseModel):
    changes: list[FeedChangeOut] = Field(description="In commit order.")
    next_cursor: str = Field(description="Pass as 'cursor' for the next page; store it.")
    has_more: bool = Field(description="More changes follow at once.")

    @classmethod
    def of(cls, page: feed.FeedPage) -> FeedPageOut:
        changes = [
            FeedChangeOut(op="add", id=c.id, signal=c.signal, hash=c.hash)
            if c.op == "add"
            else FeedChangeOut(op="remove", id=c.id, signal=c.signal)
            for c in page.changes
        ]
        return cls(changes=changes, next_cursor=page.next_cursor, has_more=page.has_more)
