"""Liveness, readiness and metrics."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily

from hashsvc.api.deps import StateDep
from hashsvc.signals import SIGNALS

router = APIRouter(tags=["health"])

READY_TIMEOUT_S = 1.0


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """200 while the process serves requests (liveness; says nothing about Redis)."""
    return {"status": "alive"}


@router.get("/readyz")
async def readyz(state: StateDep) -> JSONResponse:
    """200 when Redis answers and the index replicas are current; 503 otherwise."""
    try:
        async with asyncio.timeout(READY_TIMEOUT_S):
            await state.store.ping()
            await state.replicas.catch_up()
    except Exception:  # any failure means "not ready": reported, never raised
        return JSONResponse(
            {"status": "unavailable", "redis": False}, status_code=503, headers={"Retry-After": "1"}
        )
    sizes = {name: len(state.replicas.index(name)) for name in SIGNALS}
    return JSONResponse({"status": "ready", "redis": True, "index": sizes})


class _Snapshot:
    """A one-scrape collector of values read from Redis just before rendering."""

    def __init__(self, families: list[GaugeMetricFamily]) -> None:
        self._families = families

    def collect(self) -> list[GaugeMetricFamily]:
        return self._families


@router.get("/metrics", response_class=Response)
async def metrics(state: StateDep) -> Response:
    """Prometheus text: the job ledger (accepted = done + failed + pending) and index sizes."""
    ledger = await state.store.jobs.ledger()
    jobs = GaugeMetricFamily(
        "hashsvc_jobs", "Scan jobs by state; accepted = done + failed + pending", labels=["state"]
    )
    for name, value in ledger.items():
        jobs.add_metric([name], value)
    index = GaugeMetricFamily("hashsvc_index_size", "Live hashes per signal", labels=["signal"])
    for name in SIGNALS:
        index.add_metric([name], len(state.replicas.index(name)))
    registry = CollectorRegistry()
    registry.register(_Snapshot([jobs, index]))
    return Response(generate_latest(registry), media_type="text/plain; version=0.0.4")
