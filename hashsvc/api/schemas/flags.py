"""Platform-facing flag models."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from hashsvc.models import Decision, Flag


class FlagOut(BaseModel):
    flag_id: str
    job_id: str | None
    signal: str
    distance: int
    matched_frames: int
    created_at: float
    status: str
    decision: str
    decided_at: float | None

    @classmethod
    def of(cls, flag: Flag) -> FlagOut:
        return cls(
            flag_id=flag.flag_id,
            job_id=flag.job_id,
            signal=flag.signal,
            distance=flag.distance,
            matched_frames=flag.matched_frames,
            created_at=flag.created_at,
            status=flag.status.value,
            decision=flag.decision.value,
            decided_at=flag.decided_at,
        )


class FlagPage(BaseModel):
    flags: list[FlagOut]
    next_cursor: str | None = Field(description="Pass as 'cursor' for the next page.")


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: Decision
