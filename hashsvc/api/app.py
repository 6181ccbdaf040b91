"""The application factory: the composition root of the HTTP service."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import FastAPI

from hashsvc import __version__
from hashsvc.api.deps import AppState
from hashsvc.api.errors import install_error_handlers
from hashsvc.api.limits import BodySizeLimit
from hashsvc.api.overload import AdmissionLimit
from hashsvc.api.requestid import RequestId
from hashsvc.api.routes import admin, cases, feed, flags, health, jobs, scan, trust, web
from hashsvc.config import Settings
from hashsvc.durability import check_durability
from hashsvc.matching import Matcher, ReplicaSet
from hashsvc.observability import RequestMetrics
from hashsvc.signals import SIGNALS
from hashsvc.store import Store
from hashsvc.trust import Trust

_MULTIPART_OVERHEAD = 64 * 1024


def create_app(settings: Settings, redis_url: str) -> FastAPI:
    """A FastAPI app bound to the Redis at ``redis_url`` (opened in the lifespan)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = Store.open(redis_url, change_retention=settings.change_stream_retention)
        try:
            await check_durability(store, settings)
            replicas = ReplicaSet(store.changes, SIGNALS)
            await replicas.bootstrap()
            for signal in SIGNALS.values():  # build the low-information references now
                await anyio.to_thread.run_sync(signal.degenerate_codes)
            matcher = Matcher(replicas, store.changes, settings, store.cases.signals)
            app.state.hashsvc = AppState(settings, store, replicas, matcher, Trust(settings, store))
            yield
        finally:
            await store.close()

    app = FastAPI(
        title="hashsvc",
        version=__version__,
        summary="Victims submit image hashes; platforms scan uploads against them.",
        lifespan=lifespan,
    )
    install_error_handlers(app)

    upload_limits = {
        "/v1/scan": settings.max_upload_bytes,
        "/v1/scan/jobs": settings.max_job_upload_bytes,
        "/v1/admin/allowlist": settings.max_upload_bytes,  # an image, hashed server-side
    }

    def limit_for(path: str, content_type: str) -> int:
        if path not in upload_limits or content_type.startswith("application/json"):
            return settings.max_request_json_bytes  # JSON hashes, never media
        overhead = _MULTIPART_OVERHEAD if content_type.startswith("multipart/") else 0
        return upload_limits[path] + overhead

    app.add_middleware(
        AdmissionLimit,
        max_in_flight=settings.max_in_flight,
        max_decodes=settings.max_concurrent_decodes,
    )
    # Outside admission: an oversized body is refused without taking a slot, and an answer
    # given before the body was read (a 503 included) closes the connection.
    app.add_middleware(
        BodySizeLimit,
        limit_for=limit_for,
        timeout_s=settings.body_timeout_s,
        min_bytes_per_s=settings.body_min_bytes_per_s,
    )
    app.add_middleware(RequestMetrics)  # counts and logs every answer, refusals included
    app.add_middleware(RequestId)  # outermost: even a 413 carries the request id
    routers = (
        cases.router,
        scan.router,
        jobs.router,
        flags.router,
        feed.router,
        admin.router,
        trust.router,
        health.router,
    )
    for router in routers:
        app.include_router(router)
    app.include_router(web.router)  # the victim page at / and its assets
    return app
