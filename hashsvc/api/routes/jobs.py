"""Platforms: queued scans of images and videos, answered at once with a job id."""

from __future__ import annotations

import anyio.to_thread
from fastapi import APIRouter, Request, status

from hashsvc import jobs
from hashsvc.api.auth import JobReaderDep, ScanningPlatformDep, audit
from hashsvc.api.bodies import is_media_upload, parse_json, read_body, read_media
from hashsvc.api.deps import StateDep
from hashsvc.api.schemas.common import error_responses, upload_request_body
from hashsvc.api.schemas.jobs import JobAccepted, JobFromUri, JobOut
from hashsvc.api.schemas.scan import ScanHitOut
from hashsvc.errors import BadRequest

router = APIRouter(prefix="/v1/scan/jobs", tags=["jobs"])

_REQUEST_BODY = upload_request_body(JobFromUri, "video/*", "image/*")


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobAccepted,
    responses=error_responses(400, 401, 403, 413, 422, 429, 503),
    openapi_extra={"requestBody": _REQUEST_BODY},
)
async def create_job(
    request: Request, platform: ScanningPlatformDep, state: StateDep
) -> JobAccepted:
    """Queue a scan of an uploaded image or video, or of a file:// URI under the platform's
    file root. The upload is kept only until the job ends (and at most its TTL)."""
    content_type = request.headers.get("content-type", "").lower()
    if content_type.startswith("application/json"):
        uri = parse_json(JobFromUri, await read_body(request)).uri
        await anyio.to_thread.run_sync(jobs.confine_uri, uri, platform.file_root)
        job = await jobs.enqueue(platform, state.settings, state.store, data=None, uri=uri)
    elif is_media_upload(content_type):
        data = await read_media(request)
        job = await jobs.enqueue(platform, state.settings, state.store, data=data, uri=None)
    else:
        raise BadRequest(
            "unsupported Content-Type: send multipart/form-data with a 'file' field, a raw "
            'image or video body, or application/json {"uri": "file://..."}'
        )
    await audit(state, f"platform:{platform.platform_id}", "job.create", job.job_id)
    return JobAccepted(job_id=job.job_id, status=job.status.value)


@router.get("/{job_id}", response_model=JobOut, responses=error_responses(401, 403, 404, 429, 503))
async def get_job(job_id: str, platform: JobReaderDep, state: StateDep) -> JobOut:
    """Status and, once done, the matches (each with the flag raised for review)."""
    job = await jobs.get_job(platform, job_id, state.store)
    result = jobs.result_of(job)
    matches = [ScanHitOut(**m) for m in result.get("matches", [])]
    return JobOut(
        job_id=job.job_id,
        status=job.status.value,
        source=job.source,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        attempts=job.attempt,
        error=job.error,
        kind=result.get("kind"),
        frames=result.get("frames"),
        matched=bool(matches),
        matches=matches,
    )
