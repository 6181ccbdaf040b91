"""Content to hashes, the same way everywhere (server scans, workers, CLI, tests): safe decode,
then every registered signal. Synchronous and CPU-bound: async callers run it in a thread."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from PIL import Image

from hashsvc.config import Settings
from hashsvc.errors import MediaTooLarge
from hashsvc.media import decode_image, is_video, sample_frames
from hashsvc.signals import SIGNALS, hash_all

_SNIFF_BYTES = 64


@dataclass(frozen=True)
class ComputedHash:
    signal: str
    code: bytes
    quality: int | None

    @property
    def hex(self) -> str:
        return SIGNALS[self.signal].to_hex(self.code)


@dataclass(frozen=True)
class MediaHashes:
    """The hashes of an image (one frame) or of a video's sampled frames."""

    kind: str  # "image" | "video"
    frames: list[list[ComputedHash]]


class _Scored(Protocol):
    @property
    def quality(self) -> int | None: ...


def informative(frame: Iterable[_Scored], min_quality: int) -> bool:
    """Whether a frame's hashes may be matched: every quality score it carries (PDQ's) is at
    least ``min_quality``. Flat and gradient images score below it; their codes are rounding
    noise that could sit near any stored degenerate hash. The rule of every scan (worker jobs,
    sync uploads, sync hash lists): a frame that fails it is not matched at all, pHash included
    (a flat image's pHash is noise too). A hash without a score (pHash; a PDQ sent without its
    quality in a hash-only scan) does not fail it."""
    return all(h.quality is None or h.quality >= min_quality for h in frame)


def hash_image(image: Image.Image) -> list[ComputedHash]:
    return [ComputedHash(name, r.code, r.quality) for name, r in hash_all(image).items()]


def hash_bytes(data: bytes, settings: Settings) -> list[ComputedHash]:
    """Decode image bytes within the configured limits and hash them with every signal."""
    image = decode_image(
        data,
        max_bytes=settings.max_upload_bytes,
        max_pixels=settings.max_image_pixels,
        max_frames=settings.max_image_frames,
    )
    return hash_image(image)


def _check_size(size: int, limit: int, what: str) -> None:
    if size > limit:
        raise MediaTooLarge("too_many_bytes", f"{what} is {size} bytes; the limit is {limit}")


def hash_file(path: Path, settings: Settings) -> list[ComputedHash]:
    """Hash a local image file (refusing oversized files before reading them whole)."""
    _check_size(path.stat().st_size, settings.max_upload_bytes, path.name)
    return hash_bytes(path.read_bytes(), settings)


def hash_media(source: bytes | Path, settings: Settings) -> MediaHashes:
    """Hash an image or a video (told apart by their bytes, never by name or type)."""
    if isinstance(source, Path):
        with source.open("rb") as handle:
            head = handle.read(_SNIFF_BYTES)
    else:
        head = source[:_SNIFF_BYTES]
    if is_video(head):
        frames = sample_frames(source, limits=settings.video_limits())
        return MediaHashes("video", [hash_image(frame.image) for frame in frames])
    if isinstance(source, Path):
        return MediaHashes("image", [hash_file(source, settings)])
    return MediaHashes("image", [hash_bytes(source, settings)])


def hash_media_sandboxed(source: bytes | Path, settings: Settings) -> MediaHashes:
    """``hash_media`` in a sandboxed child process (for untrusted uploads and URIs): a decoder
    crash, hang or bomb raises ``MediaRejected`` (or ``MemoryError``) instead of killing us."""
    from hashsvc.sandbox import shared_pool  # not at top: the sandbox imports this module

    return shared_pool(settings).hash_media(source, settings)


def hash_bytes_sandboxed(data: bytes, settings: Settings) -> list[ComputedHash]:
    """``hash_bytes`` in a sandboxed child process."""
    from hashsvc.sandbox import shared_pool

    return shared_pool(settings).run(hash_bytes, data, settings)
