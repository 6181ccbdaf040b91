"""Admission control: under overload, answer ``503`` + ``Retry-After`` at once instead of queueing
without bound (a queued request that finishes after its client gave up is wasted work).

Two limits per process, checked before the body is read:
- ``max_in_flight`` requests being served (every route but the probes and ``/metrics``);
- ``max_concurrent_decodes`` image uploads to ``POST /v1/scan`` being decoded and hashed
  (sandboxed children do that work; a few more than there are children keeps them busy
  without building a queue).

The event loop is single-threaded, so plain counters are exact. Uvicorn's
``--limit-concurrency`` (``hashsvc serve``) is a coarser backstop on connections.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from hashsvc.api.errors import error_response
from hashsvc.observability import SHED

EXEMPT = frozenset({"/healthz", "/readyz", "/metrics"})
DECODE_PATH = "/v1/scan"


def _is_json(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"content-type":
            return bytes(value).lower().startswith(b"application/json")
    return False


class AdmissionLimit:
    """ASGI middleware refusing requests beyond the concurrency limits with a JSON 503."""

    def __init__(self, app: ASGIApp, *, max_in_flight: int, max_decodes: int) -> None:
        self.app = app
        self.max_in_flight = max_in_flight
        self.max_decodes = max_decodes
        self.in_flight = 0
        self.decodes = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in EXEMPT:
            await self.app(scope, receive, send)
            return
        decode = scope["method"] == "POST" and scope["path"] == DECODE_PATH and not _is_json(scope)
        if self.in_flight >= self.max_in_flight:
            await self._refuse("in_flight", scope, receive, send)
            return
        if decode and self.decodes >= self.max_decodes:
            await self._refuse("decodes", scope, receive, send)
            return
        self.in_flight += 1
        self.decodes += decode
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1
            self.decodes -= decode

    async def _refuse(self, limit: str, scope: Scope, receive: Receive, send: Send) -> None:
        SHED.labels(limit).inc()
        response = error_response(
            503, "overloaded", "the service is at capacity; retry later", retry_after=1
        )
        await response(scope, receive, send)
