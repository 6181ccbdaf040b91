"""Platform-facing scan-job models."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from hashsvc.api.schemas.scan import ScanHitOut


class JobFromUri(BaseModel):
    model_config = ConfigDict(extra="forbid")

    uri: str = Field(
        max_length=4096,
        description="file:// URI under the platform's configured file root, read by workers.",
        examples=["file:///srv/uploads/2026/11/26/abc.mp4"],
    )


class JobAccepted(BaseModel):
    job_id: str
    status: str


class JobOut(BaseModel):
    job_id: str
    status: str = Field(description="queued, running, done or failed")
    source: str
    created_at: float
    started_at: float | None
    finished_at: float | None
    attempts: int
    error: str | None = Field(description="Why the job failed (or why the last attempt did).")
    kind: str | None = Field(description="image or video, once scanned")
    frames: int | None = Field(description="Frames hashed (1 for an image)")
    matched: bool
    matches: list[ScanHitOut]
