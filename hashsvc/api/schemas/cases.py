"""Victim-facing request and response models."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from hashsvc.api.schemas.common import HashItem


class CaseCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    hashes: list[HashItem] = Field(description="Hashes computed on the victim's own device.")


class CaseCreated(BaseModel):
    case_id: str
    secret: str = Field(description="Shown only once: it cannot be recovered.")
    hash_count: int


class MatchOut(BaseModel):
    platform: str
    matched_at: float
    signal: str
    distance: int
    decision: str


class CaseStatusOut(BaseModel):
    case_id: str
    status: str
    created_at: float
    hashes: dict[str, int]
    matches: list[MatchOut]
