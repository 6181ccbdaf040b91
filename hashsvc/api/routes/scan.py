"""Platforms: synchronous scan of one image upload or of precomputed hashes."""

from __future__ import annotations

import json

import anyio.to_thread
from fastapi import APIRouter, Request
from pydantic import ValidationError

from hashsvc import cases, scanning
from hashsvc.api.deps import PlatformDep, StateDep
from hashsvc.api.schemas.common import ErrorResponse
from hashsvc.api.schemas.scan import ComputedHashOut, ScanHashes, ScanHitOut, ScanResult
from hashsvc.api.uploads import first_file_part, read_body
from hashsvc.errors import BadRequest
from hashsvc.hashing import ComputedHash, hash_bytes
from hashsvc.models import HashEntry

router = APIRouter(prefix="/v1", tags=["scan"])

_IMAGE_TYPES = ("image/", "application/octet-stream")
_REQUEST_BODY = {
    "required": True,
    "content": {
        "application/json": {"schema": ScanHashes.model_json_schema()},
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "properties": {"file": {"type": "string", "format": "binary"}},
                "required": ["file"],
            }
        },
        "image/*": {"schema": {"type": "string", "format": "binary"}},
    },
}


def _parse_hash_body(body: bytes) -> list[cases.SubmittedHash]:
    try:
        parsed = ScanHashes.model_validate(json.loads(body))
    except json.JSONDecodeError as exc:
        raise BadRequest("the request body is not valid JSON") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise BadRequest(f"{where}: {first['msg']}") from exc
    return [cases.SubmittedHash(h.signal, h.hash, h.quality) for h in parsed.hashes]


@router.post(
    "/scan",
    response_model=ScanResult,
    openapi_extra={"requestBody": _REQUEST_BODY},
    responses={k: {"model": ErrorResponse} for k in (400, 401, 413, 415, 422)},
)
async def scan(request: Request, platform: PlatformDep, state: StateDep) -> ScanResult:
    """Scan an image (multipart ``file`` field or raw image body) or a JSON list of hashes."""
    content_type = request.headers.get("content-type", "").lower()
    body = await read_body(request)
    computed: list[ComputedHash] = []
    if content_type.startswith("application/json"):
        items = _parse_hash_body(body)
        cases.check_count(len(items), state.settings.max_hashes_per_scan)
        entries = cases.validate_hashes(items, state.settings, check_information=False)
    elif content_type.startswith(("multipart/form-data", *_IMAGE_TYPES)):
        if content_type.startswith("multipart/"):
            body = first_file_part(request.headers["content-type"].encode(), body)
        computed = await anyio.to_thread.run_sync(hash_bytes, body, state.settings)
        entries = [HashEntry(c.signal, c.code) for c in computed]
    else:
        raise BadRequest(
            "unsupported Content-Type: send application/json hashes, multipart/form-data "
            "with a 'file' field, or a raw image body"
        )
    hits = await scanning.scan(entries, platform, state.matcher, state.store)
    return ScanResult(
        matched=bool(hits),
        matches=[ScanHitOut(flag_id=h.flag_id, signal=h.signal, distance=h.distance) for h in hits],
        hashes=[ComputedHashOut(signal=c.signal, hash=c.hex, quality=c.quality) for c in computed],
    )
