"""Platforms: synchronous scan of one image upload or of precomputed hashes."""

from __future__ import annotations

import anyio.to_thread
from fastapi import APIRouter, Request

from hashsvc import cases, scanning
from hashsvc.api.auth import ScanningPlatformDep, audit
from hashsvc.api.bodies import is_media_upload, parse_json, read_body, read_media
from hashsvc.api.deps import StateDep
from hashsvc.api.schemas.common import error_responses, upload_request_body
from hashsvc.api.schemas.scan import ComputedHashOut, ScanHashes, ScanHitOut, ScanResult
from hashsvc.errors import BadRequest
from hashsvc.hashing import (
    FULL_VIEW,
    ComputedHash,
    hash_upload_sandboxed,
    informative,
    usable_views,
)
from hashsvc.media import is_video
from hashsvc.models import HashEntry
from hashsvc.observability import observe_scan

router = APIRouter(prefix="/v1", tags=["scan"])

_REQUEST_BODY = upload_request_body(ScanHashes, "image/*")


@router.post(
    "/scan",
    response_model=ScanResult,
    openapi_extra={"requestBody": _REQUEST_BODY},
    responses=error_responses(400, 401, 403, 413, 422, 429, 503),
)
async def scan(request: Request, platform: ScanningPlatformDep, state: StateDep) -> ScanResult:
    """Scan an image (multipart ``file`` field or raw image body) or a JSON list of one image's
    hashes. Low quality (a PDQ quality below the minimum, computed here or sent with the hash)
    matches nothing: ``not_matched: "low_quality"``, as in scan jobs."""
    content_type = request.headers.get("content-type", "").lower()
    computed: list[ComputedHash] = []
    if content_type.startswith("application/json"):
        parsed = parse_json(ScanHashes, await read_body(request))
        items = [h.submitted() for h in parsed.hashes]
        cases.check_count(len(items), state.settings.max_hashes_per_scan)
        entries = cases.validate_hashes(items, state.settings, check_information=False)
        usable = informative(items, state.settings.pdq_min_quality)
    elif is_media_upload(content_type):
        data = await read_media(request)
        if is_video(data[:64]):
            raise BadRequest("videos are scanned as queued jobs: POST them to /v1/scan/jobs")
        media = await anyio.to_thread.run_sync(hash_upload_sandboxed, data, state.settings)
        computed = media.frames[0]
        views = usable_views(computed, state.settings.pdq_min_quality)
        entries = [HashEntry(c.signal, c.code) for c in views]
        usable = bool(views)
    else:
        raise BadRequest(
            "unsupported Content-Type: send application/json hashes, multipart/form-data "
            "with a 'file' field, or a raw image body"
        )
    hits = []
    if usable:
        hits = await scanning.scan(
            entries, platform, state.matcher, state.store, state.trust, hash_only=not computed
        )
    observe_scan("image" if computed else "hashes", (h.signal for h in hits), usable)
    for hit in hits:
        await audit(state, f"platform:{platform.platform_id}", "flag.raise", hit.flag_id)
    return ScanResult(
        matched=bool(hits),
        matches=[ScanHitOut(flag_id=h.flag_id, signal=h.signal, distance=h.distance) for h in hits],
        hashes=[
            ComputedHashOut(signal=c.signal, hash=c.hex, quality=c.quality)
            for c in computed
            if c.variant == FULL_VIEW  # the upload's own hashes; views are looked up only
        ],
        not_matched=None if usable else "low_quality",
    )
