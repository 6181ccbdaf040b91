"""Operator commands for trust and safety (on the host, talking to Redis directly, audited as
actor ``cli``): the quarantine queue, stored-hash history, bank statistics."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from hashsvc.cli.platform import _with_store, admin_app
from hashsvc.config import Settings
from hashsvc.store import Store
from hashsvc.trust import Quarantined, Trust

quarantine_app = typer.Typer(help="Quarantined stored hashes: list, release, confirm.")
HashRef = Annotated[str, typer.Argument(help="A stored hash: h<bank id>, as listed.")]


def _row(found: Quarantined) -> dict[str, object]:
    t = found.trust
    return {
        "hash_ref": f"h{t.hash_id}",
        "case_id": found.case_id,
        "signal": found.signal,
        "state": t.state,
        "reason": t.reason,
        "quarantined_at": t.quarantined_at,
        "matches": t.matches,
        "held": t.held,
        "matches_by_platform": t.matches_by_platform,
        "decisions_by_platform": t.decisions_by_platform,
    }


@quarantine_app.command("list")
def list_command(limit: int = 100, offset: int = 0) -> None:
    """Print the quarantine queue, oldest first, one JSON object per line."""

    async def queue(store: Store, config: Settings) -> list[Quarantined]:
        return await Trust(config, store).queue(limit=limit, offset=offset)

    for found in _with_store(queue):
        typer.echo(json.dumps(_row(found), sort_keys=True))


def _move(ref: str, action: str) -> None:
    async def move(store: Store, config: Settings) -> None:
        trust = Trust(config, store)
        await {"release": trust.release, "confirm": trust.confirm, "reset": trust.reset}[action](
            ref
        )
        await store.audit.record("cli", f"hash.{action}", ref)

    _with_store(move)
    typer.echo(f"{action}d {ref}" if action != "reset" else f"reset {ref}")


@quarantine_app.command("release")
def release_command(hash_ref: HashRef) -> None:
    """Back to active: the hash raises flags again."""
    _move(hash_ref, "release")


@quarantine_app.command("confirm")
def confirm_command(hash_ref: HashRef) -> None:
    """Keep the hash active; never quarantined automatically again (until reset)."""
    _move(hash_ref, "confirm")


@admin_app.command("hash")
def hash_command(hash_ref: HashRef) -> None:
    """One stored hash's history: case, state, matches and decisions per platform."""

    async def history(store: Store, config: Settings) -> Quarantined:
        return await Trust(config, store).history(hash_ref)

    typer.echo(json.dumps(_row(_with_store(history)), sort_keys=True, indent=2))


@admin_app.command("stats")
def stats_command() -> None:
    """Bank statistics: hashes per signal, cases, quarantined, allow-listed, flags."""

    async def stats(store: Store, config: Settings) -> dict[str, Any]:
        return await Trust(config, store).stats()

    typer.echo(json.dumps(_with_store(stats), sort_keys=True, indent=2))


def register(app: typer.Typer) -> None:
    admin_app.add_typer(quarantine_app, name="quarantine")
