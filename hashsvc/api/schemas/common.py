"""Shapes shared by several routers."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from hashsvc.cases import SubmittedHash

_BINARY = {"schema": {"type": "string", "format": "binary"}}


class HashItem(BaseModel):
    """One hash: signal type name and its lowercase hex form."""

    model_config = ConfigDict(extra="forbid")

    signal: str = Field(max_length=32, examples=["pdq"])
    hash: str = Field(max_length=1024, examples=["f8f8f0cee0f4a84f06370a22038f63f0"])
    quality: int | None = Field(
        default=None, ge=0, le=100, description="PDQ quality score, if the client computed it."
    )

    def submitted(self) -> SubmittedHash:
        """The use-case form of this item."""
        return SubmittedHash(self.signal, self.hash, self.quality)


class ErrorBody(BaseModel):
    code: str
    message: str


class ErrorResponse(BaseModel):
    error: ErrorBody


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the error statuses a route can answer."""
    return {status: {"model": ErrorResponse} for status in statuses}


def upload_request_body(json_model: type[BaseModel], *media_types: str) -> dict[str, Any]:
    """OpenAPI request body of a route that takes JSON or an upload (multipart ``file`` field
    or a raw body of one of ``media_types``); the route reads the body by hand."""
    content: dict[str, Any] = {
        "application/json": {"schema": json_model.model_json_schema()},
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "properties": {"file": _BINARY["schema"]},
                "required": ["file"],
            }
        },
    }
    content.update({media_type: _BINARY for media_type in media_types})
    return {"required": True, "content": content}
