"""Victim commands: hash locally, submit only hashes, follow or withdraw a case."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from hashsvc.cases import SubmittedHash, validate_submission
from hashsvc.cli.common import Files, Server, base_url, reported_errors, request, settings
from hashsvc.hashing import ComputedHash, hash_file

Secret = Annotated[
    str,
    typer.Option(
        "--secret", prompt="Case secret", hide_input=True, help="The secret shown at submission."
    ),
]
AsJson = Annotated[bool, typer.Option("--json", help="One JSON object per file.")]


def _hash_files(files: list[Path]) -> list[tuple[Path, list[ComputedHash]]]:
    config = settings()
    return [(path, hash_file(path, config)) for path in files]


def hash_command(files: Files, as_json: AsJson = False) -> None:
    """Hash image files on this device and print the hashes. Nothing is sent anywhere."""
    with reported_errors():
        for path, hashes in _hash_files(files):
            if as_json:
                items = [{"signal": h.signal, "hash": h.hex, "quality": h.quality} for h in hashes]
                typer.echo(json.dumps({"file": str(path), "hashes": items}))
                continue
            for h in hashes:
                quality = "" if h.quality is None else f"\tquality={h.quality}"
                typer.echo(f"{path}\t{h.signal}\t{h.hex}{quality}")


def submit_command(files: Files, server: Server = None) -> None:
    """Hash files on this device and submit only the hashes as a new case."""
    with reported_errors():
        items = [
            SubmittedHash(h.signal, h.hex, h.quality)
            for _, hashes in _hash_files(files)
            for h in hashes
        ]
        config = settings()
        validate_submission(items, [], config)
        payload = {
            "hashes": [{"signal": i.signal, "hash": i.hex, "quality": i.quality} for i in items]
        }
        created = request("POST", f"{base_url(server)}/v1/cases", json=payload)
    typer.echo(f"case id: {created['case_id']}")
    typer.echo(f"secret:  {created['secret']}")
    typer.secho(
        "Keep the case id and the secret: they are shown only once and cannot be recovered.",
        fg=typer.colors.YELLOW,
    )


def status_command(case_id: str, secret: Secret, server: Server = None) -> None:
    """Show a case's status and matches."""
    with reported_errors():
        body = request(
            "GET",
            f"{base_url(server)}/v1/cases/{case_id}",
            headers={"Authorization": f"Bearer {secret}"},
        )
    typer.echo(json.dumps(body, indent=2))


def withdraw_command(case_id: str, secret: Secret, server: Server = None) -> None:
    """Withdraw a case: its hashes are deleted and stop matching."""
    with reported_errors():
        request(
            "DELETE",
            f"{base_url(server)}/v1/cases/{case_id}",
            headers={"Authorization": f"Bearer {secret}"},
        )
    typer.echo(f"case {case_id} withdrawn; its hashes are deleted")


def register(app: typer.Typer) -> None:
    app.command("hash")(hash_command)
    app.command("submit")(submit_command)
    app.command("status")(status_command)
    app.command("withdraw")(withdraw_command)
