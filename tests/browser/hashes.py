"""The server's Python hashers applied to a file, and Hamming distances between hex codes."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from hashsvc.media import decode_image
from hashsvc.signals import hash_all
from hashsvc.signals.crops import victim_crop_hashes


def hamming(a: str, b: str) -> int:
    """Number of differing bits between two hex codes."""
    return (int(a, 16) ^ int(b, 16)).bit_count()


def _decode(path: Path) -> Image.Image:
    return decode_image(path.read_bytes(), max_bytes=1 << 30, max_pixels=100_000_000)


def python_hashes(path: Path) -> dict[str, tuple[str, int | None]]:
    """Signal name -> (hex code, quality) as the server computes them for this file."""
    return {name: (r.code.hex(), r.quality) for name, r in hash_all(_decode(path)).items()}


def python_crop_hashes(path: Path) -> dict[str, tuple[str, int | None]]:
    """Crop variant -> (PDQ hex code, quality) of ``victim_crop_hashes`` for this file."""
    return {h.variant: (h.code.hex(), h.quality) for h in victim_crop_hashes(_decode(path))}
