"""Liveness, readiness and metrics."""

from __future__ import annotations

import asyncio

import anyio.to_thread
from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client.core import GaugeMetricFamily

from hashsvc.api.deps import AppState, StateDep
from hashsvc.observability import CONTENT_TYPE, render
from hashsvc.signals import SIGNALS
from hashsvc.store import keys

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
    """A one-scrape collector of values read just before rendering."""

    def __init__(self, families: list[GaugeMetricFamily]) -> None:
        self._families = families

    def collect(self) -> list[GaugeMetricFamily]:
        return self._families


def _stream_ms(entry_id: str) -> int:
    return int(entry_id.split("-", 1)[0])


async def _store_families(state: AppState) -> list[GaugeMetricFamily]:
    """The job ledger, backlog, dead letters and bank sizes (shared by every process)."""
    ledger = await state.store.jobs.ledger()
    jobs = GaugeMetricFamily(
        "hashsvc_jobs", "Scan jobs by state; accepted = done + failed + pending", labels=["state"]
    )
    for name, value in ledger.items():
        jobs.add_metric([name], value)
    backlog = GaugeMetricFamily(
        "hashsvc_job_backlog", "Jobs queued or in progress (refused with 503 past the cap)"
    )
    backlog.add_metric([], await state.store.jobs.backlog())
    dead = GaugeMetricFamily("hashsvc_jobs_dead_lettered", "Entries of the dead-letter stream")
    dead.add_metric([], int(await state.store.redis.xlen(keys.DEAD_JOBS)))
    bank = GaugeMetricFamily(
        "hashsvc_bank_size", "Hashes per signal in the bank (Redis)", labels=["signal"]
    )
    for name in SIGNALS:
        bank.add_metric([name], int(await state.store.redis.hlen(keys.bank(name))))
    return [jobs, backlog, dead, bank]


async def _replica_families(state: AppState) -> list[GaugeMetricFamily]:
    """This process's index replicas: sizes, and how far behind the change stream they are
    (read before catching up: the lag a scan starting now would first have to replay)."""
    index = GaugeMetricFamily(
        "hashsvc_index_size", "Live hashes per signal in this process's index", labels=["signal"]
    )
    for name in SIGNALS:
        index.add_metric([name], len(state.replicas.index(name)))
    head, cursor = await state.store.changes.head(), state.replicas.cursor
    lag = GaugeMetricFamily(
        "hashsvc_replica_lag_seconds",
        "Age of the newest bank change this process's replicas have not applied yet (0: current)",
    )
    lag.add_metric([], max(0, _stream_ms(head) - _stream_ms(cursor)) / 1000)
    return [index, lag]


@router.get("/metrics", response_class=Response)
async def metrics(state: StateDep) -> Response:
    """Prometheus text: requests per route and status, scans, matches, shed requests, Redis
    errors (every worker process added up), the job ledger (accepted = done + failed +
    pending), backlog, dead letters, bank and index sizes, replica lag and rebuilds."""
    families = await _store_families(state) + await _replica_families(state)
    body = await anyio.to_thread.run_sync(render, [_Snapshot(families)])
    return Response(body, media_type=CONTENT_TYPE)
