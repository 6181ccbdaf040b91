"""Server commands: run the HTTP service (with an embedded Redis unless REDIS_URL is set)."""

from __future__ import annotations

import logging
import signal
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from hashsvc.cli.common import reported_errors
from hashsvc.config import load_settings
from hashsvc.durability import preflight
from hashsvc.embedded import redis_for


def serve_command(
    host: Annotated[str | None, typer.Option(help="Bind address (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8000).")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Embedded Redis data directory.")] = None,
) -> None:
    """Run the API. Without REDIS_URL, a private Redis keeps its data in the data directory."""
    overrides = {"host": host, "port": port, "data_dir": data_dir}
    config = load_settings(**{k: v for k, v in overrides.items() if v is not None})
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    import uvicorn  # heavy imports only for the command that serves

    from hashsvc.api.app import create_app

    # uvicorn re-raises SIGTERM after its graceful shutdown; with the default handler that
    # would end the process before the embedded Redis is stopped, so turn it into an exit.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    with redis_for(config.redis_url, config.data_dir, config.appendfsync) as url:
        with reported_errors():
            preflight(config, url)
        app = create_app(config, url)
        uvicorn.run(app, host=config.host, port=config.port, log_level="info", access_log=False)


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


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve_command)
    app.command("worker")(worker_command)
