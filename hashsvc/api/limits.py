"""Request-body size limits, enforced while the body streams in (neither uvicorn nor Starlette
enforces any). A declared Content-Length over the limit is refused before the app runs; a body
that grows past it (chunked or lying) is cut off with the same 413.

Before answering, the rest of an oversized body is read and discarded up to a drain cap (never
kept), so that ordinary clients receive the 413 instead of a connection reset; past the cap the
connection is closed."""

from __future__ import annotations

from collections.abc import Callable

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LimitFor = Callable[[str], int]
_MIN_DRAIN_BYTES = 1024 * 1024


def _too_large(limit: int) -> HTTPException:
    return HTTPException(413, f"request body exceeds the limit of {limit} bytes")


async def _drain(receive: Receive, budget: int) -> None:
    """Read and drop body messages until the body ends or ``budget`` bytes were dropped."""
    dropped = 0
    while dropped <= budget:
        message = await receive()
        if message["type"] != "http.request":
            return
        dropped += len(message.get("body", b""))
        if not message.get("more_body", False):
            return


class BodySizeLimit:
    """ASGI middleware; ``limit_for(path)`` gives the byte limit of a route."""

    def __init__(self, app: ASGIApp, limit_for: LimitFor) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        drain_budget = max(2 * limit, _MIN_DRAIN_BYTES)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            if int(declared) <= drain_budget:
                await _drain(receive, drain_budget)
            await _reject(scope, receive, send, limit)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    if message.get("more_body", False):
                        await _drain(receive, drain_budget - received)
                    raise _too_large(limit)
            return message

        await self.app(scope, counting_receive, send)


async def _reject(scope: Scope, receive: Receive, send: Send, limit: int) -> None:
    from hashsvc.api.errors import error_response

    response = error_response(413, "request_too_large", str(_too_large(limit).detail))
    response.headers["Connection"] = "close"
    await response(scope, receive, send)
