"""Metrics and structured logs of the HTTP service.

**Metrics** (Prometheus, ``prometheus_client``). Counters and histograms live in this module's
registry. Under ``hashsvc serve --workers N`` the parent sets ``PROMETHEUS_MULTIPROC_DIR``
before the workers start, so prometheus_client's multiprocess mode is on in every worker
(values in shared mmap files, chosen when prometheus_client is first imported) and a scrape of
``/metrics``, whichever worker answers it, adds up the counters and histograms of all of them
(:func:`render`). Per-process gauges carry a ``pid`` label in that mode. Values read from
Redis at scrape time (the job ledger, backlog, dead letters, bank sizes) are the same for
every process and come from ``hashsvc.api.routes.health``.

Labels never hold ids: requests are labelled by route *template* (``/v1/cases/{case_id}``),
unmatched paths by ``unmatched``, methods outside the usual few by ``OTHER``.

**Logs**: one JSON object per line (:class:`JsonFormatter`) with the request id of the request
being served. The request-completion line carries method, route template, status, duration
and request id; never a path, a query string, a header, a body, a hash or a secret.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterable, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hashsvc.api.requestid import current_request_id

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

REGISTRY = CollectorRegistry(auto_describe=True)

_LATENCY_BUCKETS = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)

HTTP_REQUESTS = Counter(
    "hashsvc_http_requests",
    "HTTP requests answered, by method, route template and status",
    ["method", "route", "status"],
    registry=REGISTRY,
)
HTTP_LATENCY = Histogram(
    "hashsvc_http_request_duration_seconds",
    "Time from request start to the end of the response, by method, route template and status",
    ["method", "route", "status"],
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
HTTP_IN_FLIGHT = Gauge(
    "hashsvc_http_in_flight",
    "Requests being served (summed over the worker processes)",
    registry=REGISTRY,
    multiprocess_mode="livesum",
)
SHED = Counter(
    "hashsvc_shed_requests",
    "Requests refused with 503 at admission because a concurrency limit was full",
    ["limit"],
    registry=REGISTRY,
)
SCANS = Counter(
    "hashsvc_scans",
    "Synchronous scans by input (hashes or image) and outcome",
    ["input", "outcome"],
    registry=REGISTRY,
)
SCAN_MATCHES = Counter(
    "hashsvc_scan_matches",
    "Matches returned by synchronous scans, by the signal of each hit",
    ["signal"],
    registry=REGISTRY,
)
TRUST_EVENTS = Counter(
    "hashsvc_trust_events",
    "Trust and safety events: hashes quarantined (by reason), matches held (no flag raised), "
    "oracle alerts (a platform's matching hash-only scans past oracle_alert_matches)",
    ["event"],
    registry=REGISTRY,
)
REDIS_ERRORS = Counter(
    "hashsvc_redis_errors",
    "Requests answered 503 because Redis failed, by error type",
    ["error"],
    registry=REGISTRY,
)
REPLICA_REBUILDS = Gauge(
    "hashsvc_replica_rebuilds",
    "Index rebuilds after a gap in the change stream since the process started",
    registry=REGISTRY,
    multiprocess_mode="liveall",
)

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

logger = logging.getLogger("hashsvc.request")


def multiprocess_dir() -> str | None:
    """The shared metrics directory when several worker processes serve (else None)."""
    return os.environ.get(MULTIPROC_ENV) or None


def render(extra: Sequence[Collector] = ()) -> bytes:
    """The Prometheus text of this service: every process's counters and histograms (added
    up in multiprocess mode), then ``extra`` collectors (values read at scrape time)."""
    registry = CollectorRegistry(auto_describe=False)
    directory = multiprocess_dir()
    if directory:
        MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    else:
        registry.register(_Forward(REGISTRY))
    for collector in extra:
        registry.register(collector)
    return generate_latest(registry)


def mark_process_dead(pid: int | None = None) -> None:
    """Drop a stopped worker's live gauges (multiprocess mode; a no-op otherwise)."""
    directory = multiprocess_dir()
    if directory:
        from prometheus_client import multiprocess

        pid = pid if pid is not None else os.getpid()
        multiprocess.mark_process_dead(pid, directory)  # type: ignore[no-untyped-call]


class _Forward:
    """Collects another registry (this module's, in single-process mode)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry

    def collect(self) -> Iterable[Any]:
        return self._registry.collect()


def observe_scan(source: str, hit_signals: Iterable[str], usable: bool) -> None:
    """Count one synchronous scan: ``source`` "hashes" or "image"; the signal of each hit."""
    signals = list(hit_signals)
    outcome = "low_quality" if not usable else ("matched" if signals else "not_matched")
    SCANS.labels(source, outcome).inc()
    for signal in signals:
        SCAN_MATCHES.labels(signal).inc()


def observe_redis_error(exc: BaseException) -> None:
    REDIS_ERRORS.labels(type(exc).__name__).inc()


def route_template(scope: Scope) -> str:
    """The matched route's path template, never the raw path (no ids in labels or logs)."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) and path else "unmatched"


class RequestMetrics:
    """ASGI middleware: per-request counters, latency histogram and one completion log line.

    Sits inside ``RequestId`` (the request id is set) and outside the admission and body-size
    limits (their refusals are counted and logged like any answer)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500  # if the app raises before answering, the error middleware sends a 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        HTTP_IN_FLIGHT.inc()
        try:
            await self.app(scope, receive, send_with_status)
        finally:
            HTTP_IN_FLIGHT.dec()
            duration = time.perf_counter() - start
            method = scope["method"] if scope["method"] in _METHODS else "OTHER"
            route = route_template(scope)
            HTTP_REQUESTS.labels(method, route, str(status)).inc()
            HTTP_LATENCY.labels(method, route, str(status)).observe(duration)
            _sync_process_gauges(scope)
            logger.info(
                "request",
                extra={
                    "method": method,
                    "route": route,
                    "status": status,
                    "duration_ms": round(duration * 1000, 3),
                },
            )


def _sync_process_gauges(scope: Scope) -> None:
    app = scope.get("app")
    hashsvc_state = getattr(getattr(app, "state", None), "hashsvc", None)
    replicas = getattr(hashsvc_state, "replicas", None)
    if replicas is not None:
        REPLICA_REBUILDS.set(replicas.rebuilds)


# --- logs -----------------------------------------------------------------------------------

_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "color_message",  # uvicorn's coloured duplicate of the message
    "taskName",
}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id, extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        request_id = current_request_id()
        if request_id:
            entry["request_id"] = request_id
        entry["pid"] = record.process
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value if isinstance(value, int | float | bool | str) else str(value)
        if record.exc_info and record.exc_info[0] is not None:
            entry["exc_type"] = record.exc_info[0].__name__
            entry["traceback"] = self.formatException(record.exc_info)
        return json.dumps(entry, separators=(",", ":"), ensure_ascii=False)


def logging_config(level: str = "INFO") -> dict[str, Any]:
    """A ``logging.config.dictConfig`` (also uvicorn's ``log_config``): JSON lines on stderr
    for hashsvc's, uvicorn's and every other logger."""
    handler = {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "hashsvc.observability.JsonFormatter"}},
        "handlers": {"stderr": handler},
        "root": {"handlers": ["stderr"], "level": level.upper()},
        "loggers": {
            name: {"handlers": [], "level": level.upper(), "propagate": True}
            for name in ("uvicorn", "uvicorn.error", "uvicorn.access")
        },
    }


def configure_logging(level: str = "INFO") -> None:
    import logging.config

    logging.config.dictConfig(logging_config(level))
