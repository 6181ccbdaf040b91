"""Server commands: run the HTTP service (with an embedded Redis unless REDIS_URL is set)."""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import ctypes.util
import logging
import os
import signal
import tempfile
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any

import typer

from hashsvc.cli.common import reported_errors
from hashsvc.config import load_settings
from hashsvc.durability import preflight
from hashsvc.embedded import redis_for
from hashsvc.observability import (
    MULTIPROC_ENV,
    configure_logging,
    logging_config,
    mark_process_dead,
)

if TYPE_CHECKING:
    from fastapi import FastAPI

DEFAULT_LIMIT_CONCURRENCY = 1000


def serve_command(
    host: Annotated[str | None, typer.Option(help="Bind address (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8000).")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Embedded Redis data directory.")] = None,
    workers: Annotated[
        int, typer.Option(min=1, help="Worker processes serving the API, sharing Redis.")
    ] = 1,
    limit_concurrency: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Per worker: connections plus requests beyond which uvicorn answers 503 "
            "(a backstop; the app sheds load first, see HASHSVC_MAX_IN_FLIGHT).",
        ),
    ] = DEFAULT_LIMIT_CONCURRENCY,
) -> None:
    """Run the API. Without REDIS_URL, a private Redis keeps its data in the data directory
    (owned by this process: with --workers N the worker processes share it)."""
    overrides = {"host": host, "port": port, "data_dir": data_dir}
    config = load_settings(**{k: v for k, v in overrides.items() if v is not None})
    configure_logging(config.log_level)
    import uvicorn  # heavy imports only for the command that serves

    # uvicorn re-raises SIGTERM after its graceful shutdown; with the default handler that
    # would end the process before the embedded Redis is stopped, so turn it into an exit.
    # (With several workers uvicorn's supervisor handles SIGTERM and returns.)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    common: dict[str, Any] = {
        "host": config.host,
        "port": config.port,
        "log_config": logging_config(config.log_level),
        "access_log": False,  # hashsvc logs one JSON line per request (with its request id)
        "limit_concurrency": limit_concurrency,
    }
    with redis_for(config.redis_url, config.data_dir, config.appendfsync) as url:
        with reported_errors():
            preflight(config, url)
        if workers == 1:
            from hashsvc.api.app import create_app

            uvicorn.run(create_app(config, url), **common)
            return
        with tempfile.TemporaryDirectory(prefix="hashsvc-metrics-") as metrics_dir:
            # Read by the workers at start: they share Redis and add up their metrics.
            os.environ["REDIS_URL"] = url
            os.environ[MULTIPROC_ENV] = metrics_dir
            uvicorn.run(WORKER_APP, factory=True, workers=workers, **common)


WORKER_APP = "hashsvc.cli.server:worker_app"


def worker_app() -> FastAPI:
    """The app of one ``serve --workers N`` process (a uvicorn factory, run in the child)."""
    from hashsvc.api.app import create_app

    _die_with_parent()  # a killed parent leaves no worker behind (as with the embedded Redis)
    if os.getppid() == 1:  # the parent died before the line above
        raise SystemExit(1)
    atexit.register(mark_process_dead)
    config = load_settings()
    if not config.redis_url:
        raise SystemExit("REDIS_URL is unset: worker_app runs under `hashsvc serve --workers N`")
    return create_app(config, config.redis_url)


def worker_command(
    processes: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
) -> None:
    """Run scan workers (queued jobs). Start `hashsvc serve` first in embedded mode."""
    from workers.supervisor import run_many  # heavy imports only for this command

    config = load_settings()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    with redis_for(config.redis_url, config.data_dir, config.appendfsync) as url:
        with reported_errors():
            preflight(config, url)
        run_many(processes, url)


def _die_with_parent() -> None:
    """SIGTERM this process when its parent dies (Linux ``PR_SET_PDEATHSIG``)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


_PR_SET_PDEATHSIG = 1


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve_command)
    app.command("worker")(worker_command)
