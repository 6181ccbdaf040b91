"""Test helpers: fixture photos as bytes, re-uploaded variants, and hash payloads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fixtures.make_variants import VARIANTS, encode, load_photo, photo_paths
from hashsvc.config import Settings
from hashsvc.hashing import hash_file

PHOTOS = {path.stem: path for path in photo_paths()}


def reupload(name: str, variant: str = "reencode_q60", fmt: str = "JPEG") -> bytes:
    """A fixture photo after an everyday transform, encoded as a platform would receive it."""
    image = VARIANTS[variant](load_photo(PHOTOS[name]))
    if fmt == "JPEG":
        image = image.convert("RGB")
    return encode(image, fmt, **({"quality": 85} if fmt == "JPEG" else {}))


def victim_hashes(path: Path, settings: Settings) -> list[dict[str, Any]]:
    """What a victim's device submits for one photo."""
    return [
        {"signal": h.signal, "hash": h.hex, "quality": h.quality} for h in hash_file(path, settings)
    ]


def upload(data: bytes, name: str = "upload.jpg") -> dict[str, Any]:
    return {"file": (name, data, "application/octet-stream")}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
