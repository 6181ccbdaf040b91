"""Victim commands: hash locally, submit only hashes, follow or withdraw a case."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from hashsvc.cases import SubmittedHash, validate_submission
from hashsvc.cli.common import Files, Server, base_url, reported_errors, request, settings
from hashsvc.hashing import ComputedHash, MediaHashes, hash_media
from hashsvc.signals.crops import crops_last, is_crop

Secret = Annotated[
    str,
    typer.Option(
        "--secret", prompt="Case secret", hide_input=True, help="The secret shown at submission."
    ),
]
AsJson = Annotated[bool, typer.Option("--json", help="One JSON object per file.")]


def _hash_files(files: list[Path]) -> list[tuple[Path, MediaHashes]]:
    config = settings()
    return [(path, hash_media(path, config, crops=True)) for path in files]


def _item(h: ComputedHash) -> dict[str, Any]:
    return {"signal": h.signal, "hash": h.hex, "quality": h.quality}


def _print_hashes(label: str, hashes: list[ComputedHash]) -> None:
    for h in hashes:
        quality = "" if h.quality is None else f"\tquality={h.quality}"
        typer.echo(f"{label}\t{h.signal}\t{h.hex}{quality}")


def hash_command(files: Files, as_json: AsJson = False) -> None:
    """Hash images and videos on this device and print the hashes. Nothing is sent anywhere.
    A picture's crop hashes (hashsvc.signals.crops) come after its full-picture hashes: in
    JSON as "crops" (with their "variant"), in text labelled FILE#VARIANT."""
    with reported_errors():
        for path, media in _hash_files(files):
            if as_json:
                frames = [[_item(h) for h in frame] for frame in media.frames]
                body: dict[str, Any] = {"file": str(path), "kind": media.kind}
                if media.kind == "image":
                    picture = media.frames[0]
                    body["hashes"] = [_item(h) for h in picture if not is_crop(h)]
                    body["crops"] = [
                        _item(h) | {"variant": h.variant} for h in picture if is_crop(h)
                    ]
                else:
                    body["frames"] = frames
                typer.echo(json.dumps(body))
            elif media.kind == "image":
                _print_hashes(str(path), [h for h in media.frames[0] if not is_crop(h)])
                for h in media.frames[0]:
                    if is_crop(h):
                        _print_hashes(f"{path}#{h.variant}", [h])
            else:
                for number, frame in enumerate(media.frames):
                    _print_hashes(f"{path}#frame={number}", frame)


def submit_command(files: Files, server: Server = None) -> None:
    """Hash images and videos on this device and submit only the hashes as a new case."""
    with reported_errors():
        hashed = _hash_files(files)
        seen: set[tuple[str, bytes]] = set()

        def once(hashes: list[ComputedHash]) -> list[ComputedHash]:
            """Each hash sent once (the API refuses repeats: a file given twice, a still scene)."""
            kept = []
            for h in hashes:
                if (h.signal, h.code) not in seen:
                    seen.add((h.signal, h.code))
                    kept.append(h)
            return kept

        pictures = [once(m.frames[0]) for _, m in hashed if m.kind == "image"]
        videos = [
            once([h for frame in m.frames for h in frame]) for _, m in hashed if m.kind == "video"
        ]
        videos = [video for video in videos if video]
        # Crop hashes (hashsvc.signals.crops) fill what the per-case limit leaves, as in the page.
        room = settings().max_hashes_per_case - sum(len(video) for video in videos)
        images = crops_last(pictures, room)

        def submitted(hashes: list[ComputedHash]) -> list[SubmittedHash]:
            return [SubmittedHash(h.signal, h.hex, h.quality) for h in hashes]

        validate_submission(submitted(images), [submitted(v) for v in videos], settings())
        payload = {
            "hashes": [_item(h) for h in images],
            "videos": [{"frames": [_item(h) for h in video]} for video in videos],
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
