"""The server's Python hashers applied to a file, and Hamming distances between hex codes."""

from __future__ import annotations

from pathlib import Path

from hashsvc.media import decode_image
from hashsvc.signals import hash_all


def hamming(a: str, b: str) -> int:
    """Number of differing bits between two hex codes."""
    return (int(a, 16) ^ int(b, 16)).bit_count()


def python_hashes(path: Path) -> dict[str, tuple[str, int | None]]:
    """Signal name -> (hex code, quality) as the server computes them for this file."""
    image = decode_image(path.read_bytes(), max_bytes=1 << 30, max_pixels=100_000_000)
    return {name: (result.code.hex(), result.quality) for name, result in hash_all(image).items()}
