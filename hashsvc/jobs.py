"""Platform use-cases for queued scans: enqueue an upload or a file:// URI, read a job.

A file:// URI is accepted only for a platform with a configured file root, and only if its
real path (symlinks resolved) is a regular file inside that root; workers check again when
they read it."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from hashsvc.config import Settings
from hashsvc.errors import BadRequest, HashsvcError, JobNotFound, Overloaded
from hashsvc.models import JobStatus, Platform, ScanJob
from hashsvc.security import new_job_id
from hashsvc.store import Store

RETRY_AFTER_S = 5


class UriNotAllowed(HashsvcError):
    """A well-formed job request whose URI may not be read (422): no file root, another
    scheme or host, outside the root once resolved, not a regular file."""

    code = "uri_not_allowed"
    status = 422


def confine_uri(uri: str, file_root: str | None) -> Path:
    """The local path a file:// URI names, if it is a regular file under ``file_root``."""
    if file_root is None:
        raise UriNotAllowed("this platform has no file root configured: upload the media instead")
    parts = urlsplit(uri)
    if parts.scheme != "file" or parts.netloc not in ("", "localhost"):
        raise UriNotAllowed("only file:// URIs on this host are accepted")
    real = os.path.realpath(unquote(parts.path))
    if os.path.commonpath([real, file_root]) != file_root:
        raise UriNotAllowed("the URI points outside this platform's file root")
    if not os.path.isfile(real):
        raise UriNotAllowed("the URI does not name a regular file")
    return Path(real)


async def _admit(settings: Settings, store: Store) -> None:
    backlog = await store.jobs.backlog()
    if backlog >= settings.max_job_backlog:
        raise Overloaded(
            f"{backlog} scan jobs are waiting; try again later", retry_after=RETRY_AFTER_S
        )


async def enqueue(
    platform: Platform, settings: Settings, store: Store, *, data: bytes | None, uri: str | None
) -> ScanJob:
    """Queue a scan of uploaded bytes or of a (pre-confined) file:// URI."""
    if data is not None and not data:
        raise BadRequest("the upload is empty")
    await _admit(settings, store)
    job = ScanJob(
        job_id=new_job_id(),
        platform_id=platform.platform_id,
        status=JobStatus.QUEUED,
        source="upload" if data is not None else "uri",
        uri=uri,
        created_at=time.time(),
    )
    await store.jobs.enqueue(job, data, settings.job_blob_ttl_s)
    return job


async def get_job(platform: Platform, job_id: str, store: Store) -> ScanJob:
    """The platform's own job; another platform's job is indistinguishable from none."""
    job = await store.jobs.get(job_id)
    if job is None or job.platform_id != platform.platform_id:
        raise JobNotFound(job_id)
    return job


def result_of(job: ScanJob) -> dict[str, Any]:
    return dict(json.loads(job.result)) if job.result else {}
