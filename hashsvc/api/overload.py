"""Admission control: under overload, answer ``503`` + ``Retry-After`` at once instead of queueing
without bound (a queued request that finishes after its client gave up is wasted work).

Two limits per process, checked when a request arrives (before its body is read):
- ``max_in_flight`` requests being worked on (every route but the probes and ``/metrics``);
- ``max_concurrent_decodes`` image uploads to ``POST /v1/scan`` being decoded and hashed
  (sandboxed children do that work; a few more than there are children keeps them busy
  without building a queue).

A request counts as being worked on only once its body has fully arrived (at once when it
has none): clients trickling their uploads hold connections, bounded by the body timeout
(``hashsvc.api.limits``) and uvicorn's ``--limit-concurrency``, but never the slots of the
work, so a few slow uploaders cannot starve everyone else. The limits are therefore soft:
requests admitted while their bodies were still arriving may finish them together.

The event loop is single-threaded, so plain counters are exact.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hashsvc.api.errors import error_response
from hashsvc.observability import SHED

EXEMPT = frozenset({"/healthz", "/readyz", "/metrics"})
DECODE_PATH = "/v1/scan"


def _header(scope: Scope, name: bytes) -> bytes:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value).lower()
    return b""


def _has_body(scope: Scope) -> bool:
    length = _header(scope, b"content-length")
    return _header(scope, b"transfer-encoding") != b"" or (length not in (b"", b"0"))


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
        decode = (
            scope["method"] == "POST"
            and scope["path"] == DECODE_PATH
            and not _header(scope, b"content-type").startswith(b"application/json")
        )
        if self.in_flight >= self.max_in_flight:
            await self._refuse("in_flight", scope, receive, send)
            return
        if decode and self.decodes >= self.max_decodes:
            await self._refuse("decodes", scope, receive, send)
            return
        counted = False

        def count() -> None:
            nonlocal counted
            counted = True
            self.in_flight += 1
            self.decodes += decode

        async def receive_counting() -> Message:
            message = await receive()
            done = message["type"] == "http.request" and not message.get("more_body", False)
            if done and not counted:
                count()
            return message

        if not _has_body(scope):
            count()
        try:
            await self.app(scope, receive_counting, send)
        finally:
            if counted:
                self.in_flight -= 1
                self.decodes -= decode

    async def _refuse(self, limit: str, scope: Scope, receive: Receive, send: Send) -> None:
        SHED.labels(limit).inc()
        response = error_response(
            503, "overloaded", "the service is at capacity; retry later", retry_after=1
        )
        await response(scope, receive, send)
