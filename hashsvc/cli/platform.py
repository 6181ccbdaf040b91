"""Platform commands: scan a file against the service; operators (on the host, talking to
Redis directly) create platforms and operator keys, revoke keys and disable platforms."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer

from hashsvc.cli.common import File, Server, base_url, reported_errors, request, settings
from hashsvc.config import Settings
from hashsvc.embedded import redis_for
from hashsvc.hashing import hash_file
from hashsvc.platforms import (
    NewKey,
    NewPlatform,
    create_admin_key,
    register_platform,
    resolve_file_root,
    revoke_admin_key,
    revoke_platform_key,
    set_platform_disabled,
)
from hashsvc.store import Store

T = TypeVar("T")
platform_app = typer.Typer(help="Manage platforms (operators; talks to Redis directly).")
admin_app = typer.Typer(help="Operator keys for the /v1/admin API (talks to Redis directly).")
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
            hashes = [  # the upload-side hashes, with PDQ's quality for the flat-image gate
                {"signal": h.signal, "hash": h.hex, **({"quality": h.quality} if h.quality else {})}
                for h in hash_file(file, settings(), upload=True)
            ]
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
Scopes = Annotated[
    list[str] | None,
    typer.Option(
        "--scope", help="Scope of the key (repeat): scan, review, feed. Default: scan, review."
    ),
]


def _with_store(action: Callable[[Store, Settings], Awaitable[T]]) -> T:
    """Run ``action`` against the configured Redis (the embedded one when none is set), as
    the audit actor ``cli``."""
    config = settings()

    async def run(url: str) -> T:
        store = Store.open(url)
        try:
            return await action(store, config)
        finally:
            await store.close()

    with reported_errors(), redis_for(config.redis_url, config.data_dir, config.appendfsync) as url:
        return asyncio.run(run(url))


@platform_app.command("create")
def create_command(
    name: str, file_root: FileRoot = None, webhook_url: WebhookUrl = None, scope: Scopes = None
) -> None:
    """Register a platform and print its API key (shown only once)."""
    with reported_errors():
        root = resolve_file_root(file_root) if file_root else None

    async def create(store: Store, config: Settings) -> NewPlatform:
        created = await register_platform(
            name, config, store, file_root=root, webhook_url=webhook_url, scopes=scope
        )
        await store.audit.record("cli", "platform.create", created.platform.platform_id)
        return created

    created = _with_store(create)
    typer.echo(f"platform id: {created.platform.platform_id}")
    typer.echo(f"key id:      {created.key_id}")
    typer.echo(f"api key:     {created.api_key}")
    if created.webhook_secret:
        typer.echo(f"webhook secret: {created.webhook_secret}")
    typer.secho("Store the secrets now: they are shown only once.", fg=typer.colors.YELLOW)


@platform_app.command("revoke-key")
def revoke_key_command(platform_id: str, key_id: str) -> None:
    """Revoke one key of a platform (refused by every process from the next request)."""

    async def revoke(store: Store, config: Settings) -> None:
        await revoke_platform_key(platform_id, key_id, store)
        await store.audit.record("cli", "key.revoke", key_id)

    _with_store(revoke)
    typer.echo(f"revoked {key_id}")


@platform_app.command("disable")
def disable_command(platform_id: str) -> None:
    """Refuse every key of a platform at once."""

    async def disable(store: Store, config: Settings) -> None:
        await set_platform_disabled(platform_id, True, store)
        await store.audit.record("cli", "platform.disable", platform_id)

    _with_store(disable)
    typer.echo(f"disabled {platform_id}")


@admin_app.command("create-key")
def create_admin_key_command(label: str) -> None:
    """Issue an operator key (scope admin) named LABEL in the audit log; shown only once."""

    async def create(store: Store, config: Settings) -> NewKey:
        issued = await create_admin_key(label, config, store)
        await store.audit.record("cli", "admin_key.create", issued.credential.key_id)
        return issued

    issued = _with_store(create)
    typer.echo(f"key id:    {issued.credential.key_id}")
    typer.echo(f"admin key: {issued.api_key}")
    typer.secho("Store the key now: it is shown only once.", fg=typer.colors.YELLOW)


@admin_app.command("revoke-key")
def revoke_admin_key_command(key_id: str) -> None:
    """Revoke an operator key (refused by every process from the next request)."""

    async def revoke(store: Store, config: Settings) -> None:
        await revoke_admin_key(key_id, store)
        await store.audit.record("cli", "admin_key.revoke", key_id)

    _with_store(revoke)
    typer.echo(f"revoked {key_id}")


def register(app: typer.Typer) -> None:
    app.command("scan")(scan_command)
    app.add_typer(platform_app, name="platform")
    app.add_typer(admin_app, name="admin")
