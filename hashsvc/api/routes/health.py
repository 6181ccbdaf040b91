"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from hashsvc.api.deps import StateDep
from hashsvc.signals import SIGNALS

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz(state: StateDep) -> JSONResponse:
    """200 while the process serves and Redis answers; 503 otherwise."""
    try:
        redis_ok = await state.store.ping()
    except Exception:  # any Redis failure means "not healthy", reported, not raised
        redis_ok = False
    body = {
        "status": "ok" if redis_ok else "degraded",
        "redis": redis_ok,
        "index": {name: len(state.replicas.index(name)) for name in SIGNALS},
    }
    return JSONResponse(body, status_code=200 if redis_ok else 503)
