"""Victim-facing request and response models."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from hashsvc.api.schemas.common import SubmittedHashItem


class VideoItem(BaseModel):
    """One video: the hashes of its sampled frames (low-information frames are dropped)."""

    model_config = ConfigDict(extra="forbid")

    frames: list[SubmittedHashItem]


# At least one hash, as an image or as a video frame (the use case refuses an empty case).
_NOT_EMPTY: dict[str, Any] = {
    "anyOf": [
        {"required": ["hashes"], "properties": {"hashes": {"minItems": 1}}},
        {
            "required": ["videos"],
            "properties": {"videos": {"contains": {"properties": {"frames": {"minItems": 1}}}}},
        },
    ]
}


class CaseCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra=_NOT_EMPTY)

    hashes: list[SubmittedHashItem] = Field(
        default_factory=list, description="Image hashes computed on the victim's own device."
    )
    videos: list[VideoItem] = Field(
        default_factory=list, description="Videos, each as the hashes of its sampled frames."
    )


class CaseCreated(BaseModel):
    case_id: str
    secret: str = Field(description="Shown only once: it cannot be recovered.")
    hash_count: int


class MatchOut(BaseModel):
    """A match as the victim sees it: where, when, how close, and what the platform did."""

    platform: str
    matched_at: float
    signal: str
    distance: int
    status: str
    decision: str
    decided_at: float | None


class CaseStatusOut(BaseModel):
    case_id: str
    status: str
    created_at: float
    hashes: dict[str, int]
    videos: int
    matches: list[MatchOut]
