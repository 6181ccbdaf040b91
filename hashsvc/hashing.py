"""Content to hashes, the same way everywhere (server scans, CLI, tests): safe decode, then every
registered signal. Synchronous and CPU-bound: async callers run it in a worker thread."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hashsvc.config import Settings
from hashsvc.errors import MediaTooLarge
from hashsvc.media import decode_image
from hashsvc.signals import SIGNALS, HashResult, hash_all


@dataclass(frozen=True)
class ComputedHash:
    signal: str
    code: bytes
    quality: int | None

    @property
    def hex(self) -> str:
        return SIGNALS[self.signal].to_hex(self.code)


def hash_bytes(data: bytes, settings: Settings) -> list[ComputedHash]:
    """Decode image bytes within the configured limits and hash them with every signal."""
    image = decode_image(
        data, max_bytes=settings.max_upload_bytes, max_pixels=settings.max_image_pixels
    )
    results: dict[str, HashResult] = hash_all(image)
    return [ComputedHash(name, r.code, r.quality) for name, r in results.items()]


def hash_file(path: Path, settings: Settings) -> list[ComputedHash]:
    """Hash a local file (refusing oversized files before reading them whole)."""
    size = path.stat().st_size
    if size > settings.max_upload_bytes:
        raise MediaTooLarge(
            "too_many_bytes",
            f"{path.name} is {size} bytes; the limit is {settings.max_upload_bytes}",
        )
    return hash_bytes(path.read_bytes(), settings)
