"""Platform commands: scan a file against the service; operators create platform keys."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated

import typer

from hashsvc.cli.common import File, Server, base_url, reported_errors, request, settings
from hashsvc.config import Settings
from hashsvc.embedded import redis_for
from hashsvc.hashing import hash_file
from hashsvc.platforms import NewPlatform, register_platform, resolve_file_root
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


FileRoot = Annotated[
    Path | None,
    typer.Option(help="Directory whose files this platform's jobs may name as file:// URIs."),
]
WebhookUrl = Annotated[
    str | None, typer.Option(help="Job results are POSTed here, signed with HMAC-SHA256.")
]


async def _create_platform(
    redis_url: str, name: str, config: Settings, file_root: str | None, webhook_url: str | None
) -> NewPlatform:
    store = Store.open(redis_url)
    try:
        return await register_platform(
            name, config, store, file_root=file_root, webhook_url=webhook_url
        )
    finally:
        await store.close()


@platform_app.command("create")
def create_command(name: str, file_root: FileRoot = None, webhook_url: WebhookUrl = None) -> None:
    """Register a platform and print its API key (shown only once)."""
    config = settings()
    with reported_errors(), redis_for(config.redis_url, config.data_dir, config.appendfsync) as url:
        root = resolve_file_root(file_root) if file_root else None
        created = asyncio.run(_create_platform(url, name, config, root, webhook_url))
    typer.echo(f"platform id: {created.platform.platform_id}")
    typer.echo(f"api key:     {created.api_key}")
    if created.webhook_secret:
        typer.echo(f"webhook secret: {created.webhook_secret}")
    typer.secho("Store the secrets now: they are shown only once.", fg=typer.colors.YELLOW)


def register(app: typer.Typer) -> None:
    app.command("scan")(scan_command)
    app.add_typer(platform_app, name="platform")
