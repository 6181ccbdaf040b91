"""The single mapping from errors to JSON responses: ``{"error": {"code", "message"}}``.
Every client mistake becomes a 4xx naming the problem; nothing leaks a traceback."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from hashsvc.errors import HashsvcError
from hashsvc.observability import observe_redis_error
from hashsvc.sandbox import SandboxError, SandboxOutOfMemory

logger = logging.getLogger(__name__)


def error_response(
    status: int, code: str, message: str, retry_after: int | None = None, **extra: Any
) -> JSONResponse:
    body: dict[str, Any] = {"code": code, "message": message, **extra}
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else {}
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    return JSONResponse({"error": body}, status_code=status, headers=headers)


def _describe(error: dict[str, Any]) -> str:
    where = ".".join(str(p) for p in error.get("loc", ()) if p != "body")
    return f"{where}: {error.get('msg', 'invalid')}" if where else str(error.get("msg", "invalid"))


async def _domain_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HashsvcError)
    extra = {"reason": exc.reason} if hasattr(exc, "reason") else {}
    retry_after = getattr(exc, "retry_after", None)
    return error_response(exc.status, exc.code, exc.message, retry_after, **extra)


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    if any(e.get("type") == "json_invalid" for e in errors):
        return error_response(400, "malformed_json", "the request body is not valid JSON")
    messages = [_describe(e) for e in errors[:10]]
    return error_response(422, "invalid_request", "; ".join(messages))


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _allowed_methods(request: Request) -> str:
    """Every method some route serves at this path (a 405's ``Allow``: the router names only
    the methods of the first route matching the path, when a path has one route per method)."""
    return ", ".join(
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] == Match.FULL
            for route in request.app.routes
        )
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = {
        404: "not_found",
        405: "method_not_allowed",
        408: "request_timeout",
        413: "request_too_large",
    }.get(exc.status_code, "http_error")
    response = error_response(exc.status_code, code, str(exc.detail))
    response.headers.update(exc.headers or {})
    if exc.status_code == 405:
        response.headers["Allow"] = _allowed_methods(request)
    return response


async def _redis_unavailable(_: Request, exc: Exception) -> JSONResponse:
    logger.warning("Redis unavailable: %s", type(exc).__name__)
    observe_redis_error(exc)
    return error_response(
        503, "unavailable", "the store is unavailable; nothing was recorded, retry later", 1
    )


async def _decoder_failed(_: Request, exc: Exception) -> JSONResponse:
    logger.warning("sandboxed decoder failed: %s", type(exc).__name__)
    return error_response(
        422, "media_rejected", "this file could not be decoded safely", reason="decoder_failed"
    )


async def _unexpected_error(_: Request, exc: Exception) -> JSONResponse:
    logger.error("unhandled %s", type(exc).__name__, exc_info=exc)
    return error_response(500, "internal_error", "internal error")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(HashsvcError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RedisConnectionError, _redis_unavailable)
    app.add_exception_handler(RedisTimeoutError, _redis_unavailable)
    app.add_exception_handler(SandboxError, _decoder_failed)
    app.add_exception_handler(SandboxOutOfMemory, _decoder_failed)
    app.add_exception_handler(Exception, _unexpected_error)
