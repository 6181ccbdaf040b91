"""Platform-facing scan models."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from hashsvc.api.schemas.common import HashItem


class ScanHashes(BaseModel):
    model_config = ConfigDict(extra="forbid")

    hashes: list[HashItem]


class ComputedHashOut(BaseModel):
    signal: str
    hash: str
    quality: int | None


class ScanHitOut(BaseModel):
    flag_id: str = Field(description="The flag raised for review (opaque; no case data).")
    signal: str
    distance: int
    matched_frames: int = Field(default=1, description="Frames that matched (videos).")


class ScanResult(BaseModel):
    matched: bool
    matches: list[ScanHitOut]
    hashes: list[ComputedHashOut] = Field(
        default_factory=list, description="Hashes computed from an uploaded image."
    )
