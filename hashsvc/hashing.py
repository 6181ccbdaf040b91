"""Content to hashes, the same way everywhere (server scans, workers, CLI, tests): safe decode,
then the hashes of one side of a match: ``victim_hashes`` (what a victim submits: one hash per
signal and, with ``crops``, the PDQ hashes of crops of a still picture) or, with
``upload=True``, ``upload_hashes`` (what a scan looks up: those plus views of the upload that
survive flips, turns, borders and screenshots; see ``hashsvc.signals.sides``).
Synchronous and CPU-bound: async callers run it in a thread."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

from PIL import Image

from hashsvc.config import Settings
from hashsvc.errors import MediaTooLarge
from hashsvc.media import decode_image, is_video, sample_frames
from hashsvc.signals import SIGNALS, upload_hashes, victim_hashes

_SNIFF_BYTES = 64


FULL_VIEW = "full"


@dataclass(frozen=True)
class ComputedHash:
    signal: str
    code: bytes
    quality: int | None
    variant: str = FULL_VIEW  # which view of an upload ("full", "dihedral-k", "trim", ...)

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


class _View(_Scored, Protocol):
    @property
    def variant(self) -> str: ...


V = TypeVar("V", bound=_View)


def _view_group(variant: str) -> str:
    """Dihedral variants are the full picture turned: they share its quality."""
    return FULL_VIEW if variant.startswith("dihedral") else variant


def usable_views(frame: Sequence[V], min_quality: int) -> list[V]:
    """The hashes of a frame that may be matched: those of every view of the picture (the
    full picture, a trimmed one, a screenshot's photo region) that passes ``informative``.
    A flat screenshot border can thus fail while the photo inside it is still matched."""
    groups: dict[str, list[V]] = {}
    for item in frame:
        groups.setdefault(_view_group(item.variant), []).append(item)
    return [h for group in groups.values() if informative(group, min_quality) for h in group]


def informative(frame: Iterable[_Scored], min_quality: int) -> bool:
    """Whether a group of hashes may be matched: every quality score it carries (PDQ's) is at
    least ``min_quality``. Flat and gradient images score below it; their codes are rounding
    noise that could sit near any stored degenerate hash. A hash without a score (pHash; a PDQ
    sent without its quality in a hash-only scan) does not fail it. Uploads apply it per view
    through ``usable_views`` (a view that fails is not matched at all, its pHash included: a
    flat image's pHash is noise too); a victim's or a hash-only scan's hashes are one group."""
    return all(h.quality is None or h.quality >= min_quality for h in frame)


def hash_image(
    image: Image.Image, *, upload: bool = False, crops: bool = False
) -> list[ComputedHash]:
    """The victim-side hashes of a picture (with ``crops``, its crop hashes too, as a victim's
    device submits a still picture), or its upload-side hashes with ``upload``."""
    found = upload_hashes(image) if upload else victim_hashes(image, crops=crops)
    return [ComputedHash(h.signal, h.code, h.quality, h.variant) for h in found]


def hash_bytes(
    data: bytes, settings: Settings, *, upload: bool = False, crops: bool = False
) -> list[ComputedHash]:
    """Decode image bytes within the configured limits and hash them (``hash_image``)."""
    image = decode_image(
        data,
        max_bytes=settings.max_upload_bytes,
        max_pixels=settings.max_image_pixels,
        max_frames=settings.max_image_frames,
    )
    return hash_image(image, upload=upload, crops=crops)


def _check_size(size: int, limit: int, what: str) -> None:
    if size > limit:
        raise MediaTooLarge("too_many_bytes", f"{what} is {size} bytes; the limit is {limit}")


def hash_file(
    path: Path, settings: Settings, *, upload: bool = False, crops: bool = False
) -> list[ComputedHash]:
    """Hash a local image file (refusing oversized files before reading them whole)."""
    _check_size(path.stat().st_size, settings.max_upload_bytes, path.name)
    return hash_bytes(path.read_bytes(), settings, upload=upload, crops=crops)


def hash_media(
    source: bytes | Path, settings: Settings, *, upload: bool = False, crops: bool = False
) -> MediaHashes:
    """Hash an image or a video (told apart by their bytes, never by name or type); ``crops``
    adds a still picture's crop hashes (a video's frames never get any)."""
    if isinstance(source, Path):
        with source.open("rb") as handle:
            head = handle.read(_SNIFF_BYTES)
    else:
        head = source[:_SNIFF_BYTES]
    if is_video(head):
        frames = sample_frames(source, limits=settings.video_limits())
        return MediaHashes("video", [hash_image(f.image, upload=upload) for f in frames])
    if isinstance(source, Path):
        return MediaHashes("image", [hash_file(source, settings, upload=upload, crops=crops)])
    return MediaHashes("image", [hash_bytes(source, settings, upload=upload, crops=crops)])


def hash_upload_sandboxed(source: bytes | Path, settings: Settings) -> MediaHashes:
    """The upload-side ``hash_media`` of an untrusted upload or URI, in a sandboxed child
    process: a decoder crash, hang or bomb raises ``MediaRejected`` (or ``MemoryError``)
    instead of killing us."""
    from hashsvc.sandbox import shared_pool  # not at top: the sandbox imports this module

    return shared_pool(settings).hash_media(source, settings, upload=True)
