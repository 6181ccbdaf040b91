"""Shapes shared by several routers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from hashsvc.cases import SubmittedHash
from hashsvc.signals import SIGNALS

_BINARY = {"schema": {"type": "string", "format": "binary", "minLength": 1}}  # never empty


def _one_variant_per_signal(*, quality_required: bool) -> Callable[[dict[str, Any]], None]:
    """Rewrite a hash item's JSON Schema as one object per signal (``oneOf``): the signal's
    name and a hex pattern of its length, and, with ``quality_required``, the quality score for
    the signals whose hashers compute one. This documents the rules that ``hashsvc.cases``
    applies (with messages naming the item and the rule); the model itself stays lenient so
    that those messages, not pydantic's, reach the client. What JSON Schema cannot say (the
    low-information gate: quality minimum, set bits, distance to flat images) is described in
    the item's description."""

    def rewrite(schema: dict[str, Any]) -> None:
        properties: dict[str, Any] = schema.pop("properties")
        required: list[str] = schema.pop("required", [])
        schema.pop("type", None)
        schema.pop("additionalProperties", None)
        variants = []
        for signal in SIGNALS.values():
            hash_rule = {"type": "string", "pattern": f"^[0-9a-fA-F]{{{signal.hex_length}}}$"}
            variant = {
                **properties,
                "signal": {"type": "string", "const": signal.name},
                "hash": {**properties["hash"], **hash_rule},
            }
            needs = list(required)
            if quality_required and signal.requires_quality:
                variant["quality"] = {"type": "integer", "minimum": 0, "maximum": 100}
                needs.append("quality")
            variants.append(
                {
                    "type": "object",
                    "properties": variant,
                    "required": needs,
                    "additionalProperties": False,
                }
            )
        schema["oneOf"] = variants

    return rewrite


class HashItem(BaseModel):
    """One hash: signal type name and its hex form (scanned as given)."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra=_one_variant_per_signal(quality_required=False)
    )

    signal: str = Field(max_length=32, examples=["pdq"])
    hash: str = Field(max_length=1024, examples=["f8f8f0cee0f4a84f06370a22038f63f0"])
    quality: int | None = Field(
        default=None, ge=0, le=100, description="PDQ quality score, if the client computed it."
    )

    @field_validator("quality", mode="before")
    @classmethod
    def _not_a_boolean(cls, value: Any) -> Any:
        # pydantic's lax mode would take true/false for 1/0
        if isinstance(value, bool):
            raise ValueError("the quality score is an integer from 0 to 100, not a boolean")
        return value

    def submitted(self) -> SubmittedHash:
        """The use-case form of this item."""
        return SubmittedHash(self.signal, self.hash, self.quality)


class SubmittedHashItem(HashItem):
    """One hash of a victim's picture or video frame: signal type name, hex form and, for PDQ,
    the quality score. Refused when it carries too little information to be matched safely
    (quality under the minimum, a number of set bits no photograph gives, or near the hash of a
    flat, gradient or two-tone image)."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra=_one_variant_per_signal(quality_required=True)
    )


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
        "application/json": {"schema": _inlined(json_model.model_json_schema())},
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "properties": {"file": _BINARY["schema"]},
                "required": ["file"],
                # the only field bodies.first_file_part accepts
                "additionalProperties": False,
            }
        },
    }
    content.update({media_type: _BINARY for media_type in media_types})
    return {"required": True, "content": content}


def _inlined(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with its local ``$defs`` references replaced by the definitions (a ``#/$defs``
    reference inside an OpenAPI document would point at the document's root)."""
    definitions: dict[str, Any] = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, list):
            return [resolve(item) for item in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            siblings = {k: v for k, v in node.items() if k != "$ref"}
            return resolve({**definitions[ref.removeprefix("#/$defs/")], **siblings})
        return {key: resolve(value) for key, value in node.items()}

    resolved: dict[str, Any] = resolve(schema)
    return resolved
