"""Platform commands: scan a file against the service; operators create platform keys."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

import typer

from hashsvc.cli.common import File, Server, base_url, reported_errors, request, settings
from hashsvc.config import Settings
from hashsvc.embedded import redis_for
from hashsvc.hashing import hash_file
from hashsvc.platforms import register_platform
from hashsvc.store import Store

platform_app = typer.Typer(help="Manage platforms (operators; talks to Redis directly).")
ApiKey = Annotated[str, typer.Option("--api-key", prompt="API key", hide_input=True)]
HashesOnly = Annotated[
    bool, typer.Option("--hashes-only", help="Hash locally; send only the hashes, not the file.")
]


def scan_command(
    file: File, api_key: ApiKey, server: Server = None, hashes_only: HashesOnly = False
) -> None:
    """Scan one image file against the service and print the matches."""
    headers = {"Authorization": f"Bearer {api_key}"}
    url = f"{base_url(server)}/v1/scan"
    with reported_errors():
        if hashes_only:
            hashes = [{"signal": h.signal, "hash": h.hex} for h in hash_file(file, settings())]
            body = request("POST", url, json={"hashes": hashes}, headers=headers)
        else:
            files = {"file": (file.name, file.read_bytes(), "application/octet-stream")}
            body = request("POST", url, files=files, headers=headers)
    typer.echo(json.dumps(body, indent=2))


async def _create_platform(redis_url: str, name: str, config: Settings) -> tuple[str, str]:
    store = Store.open(redis_url)
    try:
        platform, key = await register_platform(name, config, store)
        return platform.platform_id, key
    finally:
        await store.close()


@platform_app.command("create")
def create_command(name: str) -> None:
    """Register a platform and print its API key (shown only once)."""
    config = settings()
    with reported_errors(), redis_for(config.redis_url, config.data_dir, config.appendfsync) as url:
        platform_id, key = asyncio.run(_create_platform(url, name, config))
    typer.echo(f"platform id: {platform_id}")
    typer.echo(f"api key:     {key}")
    typer.secho("Store the API key now: it is shown only once.", fg=typer.colors.YELLOW)


def register(app: typer.Typer) -> None:
    app.command("scan")(scan_command)
    app.add_typer(platform_app, name="platform")
