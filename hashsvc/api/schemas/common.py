"""Shapes shared by several routers."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class HashItem(BaseModel):
    """One hash: signal type name and its lowercase hex form."""

    model_config = ConfigDict(extra="forbid")

    signal: str = Field(max_length=32, examples=["pdq"])
    hash: str = Field(max_length=1024, examples=["f8f8f0cee0f4a84f06370a22038f63f0"])
    quality: int | None = Field(
        default=None, ge=0, le=100, description="PDQ quality score, if the client computed it."
    )


class ErrorBody(BaseModel):
    code: str
    message: str


class ErrorResponse(BaseModel):
    error: ErrorBody
