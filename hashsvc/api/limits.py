"""Request-body limits, enforced in the ASGI layer (neither uvicorn nor Starlette has any): a
byte limit per route and content type, counted while the body streams in, and a time limit for
the body to arrive.

Size. A declared Content-Length over the limit is refused with 413 before the app runs, reading
nothing; a body that grows past the limit (chunked, or longer than declared) is refused as soon
as it crosses it; at most ``LINGER_OVER_LIMIT`` more bytes are read (an attacker's body is
not drained) and the connection is closed.

Early answers. Any answer given before the body was read (401, 503, 413, 408, a 422 on the
first parts of a multipart body) closes the connection, after a linger of at most ``LINGER_S``
that reads and drops the rest of a body within the limit: so that clients that write their
whole body before reading (httpx, requests) read the answer rather than a connection reset,
while a slow or endless body cannot hold the connection (uvicorn alone would read and drop
it all, however slowly it came, to keep the connection alive).

Time. uvicorn bounds neither how long a body may take nor how long headers may take. Here a
body must have arrived ``timeout_s`` after the request started, plus one second per
``min_bytes_per_s`` bytes received (so big uploads on ordinary links are not cut, while a
client trickling bytes is): else 408 and the connection is closed. Slow *headers* cannot be
bounded here (the app is called once they are complete): a reverse proxy must bound them."""

from __future__ import annotations

import time
from collections.abc import Callable

import anyio
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LimitFor = Callable[[str, str], int]
"""The byte limit of a request body, from the path and the (lower-cased) Content-Type."""

_CLOSE = {"Connection": "close"}
LINGER_S = 2.0
LINGER_OVER_LIMIT = 64 * 1024


class _BodyRefused(HTTPException):
    """Raised from ``receive`` when the body is over its limit or late."""


class _Body:
    """The request's ``receive``, counting the body against its byte and time limits."""

    def __init__(
        self,
        receive: Receive,
        headers: dict[bytes, bytes],
        limit: int,
        timeout_s: float,
        min_rate: float,
    ) -> None:
        self._receive = receive
        length = headers.get(b"content-length", b"")
        self.declared = int(length) if length.isdigit() else None
        self.chunked = b"chunked" in headers.get(b"transfer-encoding", b"").lower()
        self.limit = limit
        self.timeout_s = timeout_s
        self.min_rate = min_rate
        self.started = time.monotonic()
        self.received = 0
        self.refused: _BodyRefused | None = None
        self.complete = False

    def too_large(self) -> _BodyRefused:
        message = f"request body exceeds the limit of {self.limit} bytes"
        self.refused = _BodyRefused(413, message, headers=_CLOSE)
        return self.refused

    def unread(self) -> bool:
        """Whether part of the body is still to come from the client."""
        if self.complete:
            return False
        return self.refused is not None or self.chunked or (self.declared or 0) > self.received

    def _deadline(self) -> float:
        return self.started + self.timeout_s + self.received / self.min_rate

    async def receive(self) -> Message:
        if self.refused is not None:  # the app asks again after a refusal: it has ended
            return {"type": "http.disconnect"}
        if self.complete:  # waiting for a disconnect (streaming responses): no time limit
            return await self._receive()
        message = await self._timed_receive(self._deadline())
        if message is None:
            self.refused = _BodyRefused(
                408,
                f"the request body did not arrive within {self.timeout_s:g} s "
                f"(plus 1 s per {self.min_rate:g} bytes received)",
                headers=_CLOSE,
            )
            raise self.refused
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            self.complete = not message.get("more_body", False)
            if self.received > self.limit:
                raise self.too_large()
        elif message["type"] == "http.disconnect":  # an aborted upload: nobody to answer
            self.refused = _BodyRefused(400, "the client left before its body was complete")
            raise self.refused
        return message

    async def linger(self) -> None:
        """Read and drop the rest of a body answered early, within ``LINGER_S`` and the body's
        deadline: all of it if it is within the limit, at most ``LINGER_OVER_LIMIT`` bytes past
        a refused oversized body, nothing after a timeout."""
        if self.refused is None:
            budget = self.limit - self.received
        else:
            budget = LINGER_OVER_LIMIT if self.refused.status_code == 413 else 0
        deadline = min(time.monotonic() + LINGER_S, self._deadline())
        while budget > 0 and not self.complete:
            message = await self._timed_receive(deadline)
            if message is None or message["type"] != "http.request":
                return
            budget -= len(message.get("body", b""))
            self.complete = not message.get("more_body", False)

    async def _timed_receive(self, deadline: float) -> Message | None:
        with anyio.move_on_after(max(0.0, deadline - time.monotonic())):
            return await self._receive()
        return None


class BodySizeLimit:
    """ASGI middleware applying the byte limit ``limit_for(path, content_type)`` and the body
    time limit (``timeout_s`` plus 1 s per ``min_bytes_per_s`` received) to every request."""

    def __init__(
        self,
        app: ASGIApp,
        limit_for: LimitFor,
        timeout_s: float = 30.0,
        min_bytes_per_s: float = 64 * 1024,
    ) -> None:
        self.app = app
        self.limit_for = limit_for
        self.timeout_s = timeout_s
        self.min_bytes_per_s = min_bytes_per_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        content_type = headers.get(b"content-type", b"").decode("latin-1").lower()
        limit = self.limit_for(scope["path"], content_type)
        body = _Body(receive, headers, limit, self.timeout_s, self.min_bytes_per_s)
        if body.declared is not None and body.declared > limit:
            await _reject(scope, body, send, body.too_large())
            return

        closing = False

        async def send_closing(message: Message) -> None:
            # An answer given before the body was read (401, 503, 422 on the first multipart
            # parts, 413, 408) closes the connection: otherwise uvicorn would read and drop the
            # rest of the body, however long and slow, to keep the connection. Before closing,
            # a bounded linger lets clients that write their whole body first read the answer.
            nonlocal closing
            if message["type"] == "http.response.start" and body.unread():
                MutableHeaders(scope=message)["connection"] = "close"
                closing = True
            if closing and message["type"] == "http.response.body" and not message.get("more_body"):
                await send({**message, "more_body": True})  # the client has the whole answer
                await body.linger()
                await send({"type": "http.response.body", "body": b""})
                return
            await send(message)

        await self.app(scope, body.receive, send_closing)


async def _reject(scope: Scope, body: _Body, send: Send, refused: _BodyRefused) -> None:
    from hashsvc.api.errors import error_response

    response = error_response(413, "request_too_large", str(refused.detail))
    response.headers.update(_CLOSE)
    await response(scope, body.receive, send)
