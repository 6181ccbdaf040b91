"""Platform-facing scan models."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from hashsvc.api.schemas.common import HashItem


class ScanHashes(BaseModel):
    model_config = ConfigDict(extra="forbid")

    hashes: list[HashItem] = Field(min_length=1)


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
    not_matched: Literal["low_quality"] | None = Field(
        default=None,
        description="Why the hashes were not even looked up, as in a scan job's result: "
        "low_quality = a PDQ quality score (computed from the upload, or sent with a hash) is "
        "below the minimum (flat or nearly flat image), so nothing of this image is matched.",
    )
    hashes: list[ComputedHashOut] = Field(
        default_factory=list, description="Hashes computed from an uploaded image."
    )
