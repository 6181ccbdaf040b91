"""The ``hashsvc`` command: one typer app with victim, platform and server commands."""

from __future__ import annotations

import typer

from hashsvc.cli import platform, server, sync, trust, victim

app = typer.Typer(
    name="hashsvc",
    help="Hash images on this device, submit only the hashes, and run the matching service.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
victim.register(app)
platform.register(app)
server.register(app)
sync.register(app)
trust.register(app)


def main() -> None:
    app()
