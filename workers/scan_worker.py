"""The scan-job loop of one worker process (rules in ``hashsvc/store/jobs.py``):

take a delivery (a reclaimed entry idle past the visibility timeout first, else a new one) ->
bump the job's fencing token -> load the media -> hash (in a thread) -> match -> commit result,
flags, status and acknowledgement in one atomic step. A clean rejection of the media fails the
job at once (the same bytes would fail again); any other error, a decoder crash or timeout
included, leaves the entry pending, to be retried after the visibility timeout, and the job is
failed and dead-lettered by its ``job_max_deliveries``-th failed attempt. (A worker killed
during that attempt leaves one more delivery, which only records the failure.)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import asdict
from pathlib import Path

import anyio.to_thread
from redis.exceptions import BusyLoadingError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from hashsvc import jobs, scanning, webhooks
from hashsvc.config import Settings
from hashsvc.durability import check_durability
from hashsvc.egress import EgressPolicy
from hashsvc.errors import HashsvcError, MediaRejected
from hashsvc.hashing import FULL_VIEW, MediaHashes, hash_upload_sandboxed, usable_views
from hashsvc.matching import Matcher, ReplicaSet
from hashsvc.models import HashEntry, Platform, ScanJob
from hashsvc.signals import SIGNALS
from hashsvc.store import Store
from hashsvc.trust import Trust

logger = logging.getLogger(__name__)

_OUTAGE_PAUSE_S = 0.5


class PermanentFailure(Exception):
    """The job cannot succeed on a retry (bad media, expired upload, forbidden URI)."""


class TransientFailure(Exception):
    """The decoder crashed or ran out of time: retried, dead-lettered after the last delivery."""


_TRANSIENT_REASONS = frozenset({"decoder_crashed", "decoder_timeout"})


class ScanWorker:
    def __init__(self, settings: Settings, store: Store, consumer: str) -> None:
        self.settings = settings
        self.store = store
        self.consumer = consumer
        self.replicas = ReplicaSet(store.changes, SIGNALS)
        self.matcher = Matcher(self.replicas, store.changes, settings, store.cases.signals)
        self.trust = Trust(settings, store)
        self._next_sweep = 0.0

    async def run(self, stop: asyncio.Event) -> None:
        """Serve jobs until ``stop`` is set (the job in hand is finished first). A Redis
        outage pauses the loop; it resumes by itself when Redis is back."""
        ready = False
        self._next_sweep = 0.0
        while not stop.is_set():
            try:
                if not ready:
                    await check_durability(self.store, self.settings)
                    await self.store.jobs.ensure_group()
                    await self.replicas.bootstrap()
                    ready = True
                    logger.info("worker %s ready", self.consumer)
                await self._serve_once()
            except (RedisConnectionError, RedisTimeoutError, BusyLoadingError) as exc:
                logger.warning("Redis unavailable (%s); retrying", type(exc).__name__)
                await asyncio.sleep(_OUTAGE_PAUSE_S)
            except ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                ready = False  # the stream or its group is gone (a flushed Redis): recreate

    async def _serve_once(self) -> None:
        """Take and process at most one delivery: a reclaimed one first, else a new one."""
        deliveries = []
        if time.monotonic() >= self._next_sweep:
            visibility_ms = int(self.settings.worker_visibility_timeout_s * 1000)
            deliveries = await self.store.jobs.reclaim(self.consumer, visibility_ms)
            self._next_sweep = time.monotonic() + self.settings.worker_sweep_interval_s
        if not deliveries:
            # Below the client's command timeout, so a blocking read never looks like an outage.
            block_ms = max(1, int(min(self.settings.worker_sweep_interval_s, 1.0) * 1000))
            deliveries = await self.store.jobs.read_new(self.consumer, block_ms)
        for entry_id, job_id in deliveries:
            await self.process(entry_id, job_id)

    async def process(self, entry_id: str, job_id: str) -> str:
        """Handle one delivery; returns the outcome (for logs and tests)."""
        started = time.monotonic()
        deliveries = await self.store.jobs.deliveries(entry_id)
        attempt = await self.store.jobs.start_attempt(job_id, self.consumer)
        job = await self.store.jobs.get(job_id)
        if attempt < 0 or job is None:
            await self.store.jobs.discard(entry_id)
            return "discarded"
        if deliveries > self.settings.job_max_deliveries:
            error = f"gave up after {deliveries - 1} attempts; last error: {job.error}"
            outcome = await self.store.jobs.commit_failed(
                job_id, entry_id, attempt, error, deliveries
            )
        else:
            outcome = await self._attempt(job, entry_id, attempt, deliveries)
        if outcome == "lost_lease":
            logger.warning(
                "job %s: lost lease (attempt %d was superseded); nothing committed", job_id, attempt
            )
        logger.info(
            "job %s delivery %d: %s in %.3fs",
            job_id,
            deliveries,
            outcome,
            time.monotonic() - started,
        )
        return outcome

    async def _attempt(self, job: ScanJob, entry_id: str, attempt: int, deliveries: int) -> str:
        platform = await self.store.platforms.get(job.platform_id)
        try:
            async with self._lease(entry_id):
                if platform is None:
                    raise PermanentFailure("the platform no longer exists")
                media = await self._hash(job, platform)
                return await self._commit(job, entry_id, attempt, platform, media)
        except PermanentFailure as exc:
            return await self.store.jobs.commit_failed(
                job.job_id, entry_id, attempt, str(exc), deliveries
            )
        except Exception as exc:  # the job boundary: retry, or give up on the last delivery
            error = (
                str(exc) if isinstance(exc, TransientFailure) else f"{type(exc).__name__}: {exc}"
            )
            logger.warning("job %s attempt %d failed: %s", job.job_id, attempt, error)
            if deliveries >= self.settings.job_max_deliveries:
                return await self.store.jobs.commit_failed(
                    job.job_id,
                    entry_id,
                    attempt,
                    f"gave up after {deliveries} attempts: {error}",
                    deliveries,
                )
            await self.store.jobs.record_retry(job.job_id, attempt, error)
            return "retry"

    @contextlib.asynccontextmanager
    async def _lease(self, entry_id: str) -> AsyncIterator[None]:
        """Renew the entry's lease while a long job (a video) is being processed."""

        async def renew() -> None:
            while True:
                await asyncio.sleep(self.settings.worker_visibility_timeout_s / 3)
                await self.store.jobs.renew(self.consumer, entry_id)

        task = asyncio.create_task(renew())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _hash(self, job: ScanJob, platform: Platform) -> MediaHashes:
        source: bytes | Path
        try:
            if job.source == "upload":
                blob = await self.store.jobs.blob(job.job_id)
                if blob is None:
                    raise PermanentFailure("the upload expired before the job ran")
                source = blob
            else:
                source = await anyio.to_thread.run_sync(
                    jobs.confine_uri, job.uri or "", platform.file_root
                )
            return await anyio.to_thread.run_sync(hash_upload_sandboxed, source, self.settings)
        except MediaRejected as exc:
            if exc.reason in _TRANSIENT_REASONS:  # may pass on a less loaded machine
                raise TransientFailure(f"{exc.reason}: {exc.message}") from exc
            raise PermanentFailure(f"{exc.reason}: {exc.message}") from exc
        except HashsvcError as exc:
            raise PermanentFailure(exc.message) from exc

    async def _commit(
        self, job: ScanJob, entry_id: str, attempt: int, platform: Platform, media: MediaHashes
    ) -> str:
        usable = (usable_views(f, self.settings.pdq_min_quality) for f in media.frames)
        kept = [views for views in usable if views]
        frames = [[HashEntry(h.signal, h.code) for h in frame] for frame in kept]
        min_frames = 1
        if media.kind == "video":
            min_frames = min(self.settings.video_min_matching_frames, len(frames))
        found = await self.matcher.match_frames(frames, min_frames=max(1, min_frames))
        matches = await scanning.admitted(
            found, frames, platform, self.trust, upload_id=job.job_id, min_frames=min_frames
        )
        flags = scanning.flags_for(matches, platform, job_id=job.job_id)
        hits = scanning.hits_for(flags, matches)
        result: dict[str, object] = {
            "kind": media.kind,
            "frames": len(media.frames),
            "matches": [asdict(hit) for hit in hits],
        }
        if not kept:
            result["not_matched"] = "low_quality"  # every frame is flat or nearly flat
        if media.kind == "image":  # the image's own hashes, as the sync scan returns them
            result["hashes"] = [
                {"signal": h.signal, "hash": h.hex, "quality": h.quality}
                for h in media.frames[0]
                if h.variant == FULL_VIEW
            ]
        body = json.dumps(result, sort_keys=True)
        outcome = await self.store.jobs.commit_done(job.job_id, entry_id, attempt, body, flags)
        if outcome == "ok" and platform.webhook_url:
            public = {k: v for k, v in result.items() if k != "hashes"}
            await self._notify(platform, job.job_id, public)
        return outcome

    async def _notify(self, platform: Platform, job_id: str, result: dict[str, object]) -> None:
        secret = await self.store.platforms.webhook_secret(platform.platform_id)
        if not platform.webhook_url or not secret:
            return
        body = json.dumps({"job_id": job_id, "status": "done", **result}).encode()
        delivered = await webhooks.deliver(
            platform.webhook_url,
            secret,
            body,
            timeout_s=self.settings.webhook_timeout_s,
            attempts=self.settings.webhook_attempts,
            policy=EgressPolicy.of(self.settings),
        )
        if not delivered:
            logger.warning("webhook for job %s not delivered", job_id)
