"""Safe sampling of frames from untrusted video bytes (the only place video is parsed).

Owns the video allow-list (``is_video``), the limits (``VideoLimits``) and frame sampling
(``sample_frames`` -> ``VideoFrame``: a timestamp and an RGB image ready for the signals).

Order of checks: byte size, container magic (MP4/MOV/3GP ``ftyp`` box, Matroska/WebM EBML
header, AVI ``RIFF....AVI ``; nothing else reaches FFmpeg), open with OpenCV's FFmpeg
backend, frame size from the header, then one sequential pass over the frames. Failures
caused by the bytes become ``MediaRejected`` / ``MediaTooLarge``; bytes are never logged.

No disk: OpenCV (>= 4.11) decodes from a Python stream, so bytes are read from an
``io.BytesIO`` and a ``Path`` from its open file object, never by name. FFmpeg therefore
never interprets a name (protocol prefixes such as ``concat:``, image-sequence patterns,
extensions) and uploads are never written to a temporary file, which keeps the README's
promise that uploaded media lives only in memory.

Why sniff first: FFmpeg picks a demuxer from the content, and some demuxers (HLS
``#EXTM3U``, ``ffconcat``) open further files or URLs named in the data. The three allowed
families do not follow references by default (MOV external ``dref`` is off).

Time bounds: ``max_decode_s`` of wall clock for the whole pass (checked after every frame);
timestamps advance at least ``1 / _MAX_FPS`` per frame, so at most
``max_duration_s * _MAX_FPS`` frames are ever decoded whatever the timestamps claim; each
``grab()`` gives up after a bounded number of undecodable packets (OpenCV's
``OPENCV_FFMPEG_READ_ATTEMPTS``). ``CAP_PROP_OPEN_TIMEOUT_MSEC`` / ``READ_TIMEOUT_MSEC`` are
set too (the FFmpeg backend accepts them), but FFmpeg enforces them only while waiting on
I/O, which reading from memory never does: they matter only if FFmpeg were to open a URL.
A single frame that decodes forever cannot be interrupted from Python; the worker's own
timeout is the backstop.

Known gaps: a file cut short (AVI, Matroska; MP4 with its index at the end cannot even be
opened) yields the frames before the cut, as players show them. A frame whose size grows
mid-stream is decoded before its size can be checked (then rejected).
"""

from __future__ import annotations

import io
import math
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import BinaryIO

import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image

from hashsvc.errors import MediaRejected, MediaTooLarge

Pixels = npt.NDArray[np.uint8]

SNIFF_BYTES = 12  # enough for every container signature
THUMB_SIDE = 64  # scene detection compares THUMB_SIDE x THUMB_SIDE greyscale thumbnails

_EPS = 1e-3  # seconds: timestamps within this of a sampling point count as on it
_MAX_FPS = 240.0  # timestamps advance at least 1/_MAX_FPS per frame
_IO_TIMEOUT_MS = 10_000
_EBML_MAGIC = b"\x1a\x45\xdf\xa3"
# ISO-BMFF major brands that start with ``ftyp`` but are not video: HEIF/AVIF stills and
# image sequences, JPEG XL, Canon raw, iTunes audio.
_NOT_VIDEO_BRANDS = frozenset(
    {b"avif", b"avis", b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1"}
    | {b"mif2", b"msf1", b"jxl ", b"crx ", b"M4A ", b"M4B ", b"M4P "}
)


@dataclass(frozen=True)
class VideoLimits:
    """Limits and sampling parameters of ``sample_frames``.

    One frame is kept per ``sample_interval_s`` plus one per scene change: the mean
    absolute difference (0-255) of the greyscale thumbnails of two frames about
    ``scene_check_interval_s`` apart exceeding ``scene_change_threshold`` (cuts between
    the fixture photos measure 44-112, a slow zoom under 4). Kept frames are scaled down to
    at most ``max_frame_side`` pixels on their longest side, which bounds memory at about
    ``max_frames * max_frame_side**2 * 3`` bytes (530 MB for 300 frames of 16:9 at 1024;
    PDQ moved at most 8 bits when 1080p frames were scaled to 1024). ``max_decode_s`` is
    the wall-clock budget of one call (``MediaTooLarge(reason="decode_timeout")``).
    """

    max_bytes: int
    max_duration_s: float
    max_frames: int
    max_pixels: int
    sample_interval_s: float = 1.0
    scene_change_threshold: float = 30.0
    scene_check_interval_s: float = 0.1
    max_frame_side: int = 1024
    max_decode_s: float = 120.0

    def __post_init__(self) -> None:
        positive = (
            self.max_bytes,
            self.max_duration_s,
            self.max_frames,
            self.max_pixels,
            self.sample_interval_s,
            self.scene_check_interval_s,
            self.max_frame_side,
            self.max_decode_s,
        )
        if min(positive) <= 0 or self.scene_change_threshold < 0:
            raise ValueError(f"video limits must be positive: {self}")


@dataclass(frozen=True)
class VideoFrame:
    """A sampled frame: seconds since the first decoded frame, and its RGB image."""

    timestamp: float
    image: Image.Image


def is_video(data_head: bytes) -> bool:
    """Whether the first bytes (at least ``SNIFF_BYTES``) start an allowed video container."""
    if data_head.startswith(_EBML_MAGIC):
        return True
    if len(data_head) < SNIFF_BYTES:
        return False
    if data_head[4:8] == b"ftyp":
        return data_head[8:12] not in _NOT_VIDEO_BRANDS
    return data_head[:4] == b"RIFF" and data_head[8:12] == b"AVI "


def sample_frames(data: bytes | Path, *, limits: VideoLimits) -> list[VideoFrame]:
    """Decode up to ``max_duration_s`` of video and return at most ``max_frames`` frames.

    Always the first frame, then one per ``sample_interval_s`` and one per scene change.
    When a long video would exceed ``max_frames``, the periodic samples are thinned (the
    interval doubles) so they still cover the whole duration, and scene-change frames
    (at most a third of ``max_frames``) are kept first come.
    """
    if isinstance(data, Path):
        with data.open("rb") as handle:
            head = handle.read(SNIFF_BYTES)
            _check_upload(os.fstat(handle.fileno()).st_size, head, limits)
            handle.seek(0)
            return _sample_stream(handle, limits)
    _check_upload(len(data), data[:SNIFF_BYTES], limits)
    return _sample_stream(io.BytesIO(data), limits)


def _check_upload(size: int, head: bytes, limits: VideoLimits) -> None:
    if size == 0:
        raise MediaRejected(reason="empty", message="the upload is empty")
    if size > limits.max_bytes:
        raise MediaTooLarge(
            reason="too_many_bytes",
            message=f"the video is {size} bytes, the limit is {limits.max_bytes}",
        )
    if not is_video(head):
        raise MediaRejected(
            reason="unsupported_format",
            message="the upload is not a video in an allowed container (MP4/MOV/3GP, "
            "WebM/Matroska, AVI)",
        )


def _sample_stream(stream: BinaryIO, limits: VideoLimits) -> list[VideoFrame]:
    capture = _open(stream)
    try:
        width = int(_get(capture, cv2.CAP_PROP_FRAME_WIDTH))
        height = int(_get(capture, cv2.CAP_PROP_FRAME_HEIGHT))
        _check_pixels(width, height, limits.max_pixels)
        sampler = _Sampler(limits)
        _read(capture, sampler, limits)
    finally:
        capture.release()
    frames = sampler.frames()
    if not frames:
        raise _corrupt("no frame could be decoded")
    return frames


def _open(stream: BinaryIO) -> cv2.VideoCapture:
    """A capture on ``stream`` with the FFmpeg backend only (no other backend is tried)."""
    params = [
        cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
        _IO_TIMEOUT_MS,
        cv2.CAP_PROP_READ_TIMEOUT_MSEC,
        _IO_TIMEOUT_MS,
    ]
    capture: cv2.VideoCapture | None = None
    try:
        # The stubs type a stream source as cv2.IStreamReader; the Python binding takes any
        # io.BufferedIOBase (read + seek).
        capture = cv2.VideoCapture(stream, cv2.CAP_FFMPEG, params)  # type: ignore[call-overload]
        opened = capture is not None and capture.isOpened()
    except cv2.error:
        opened = False
    if opened and capture is not None:
        return capture
    if capture is not None:
        capture.release()
    if not _decodes_from_memory():
        raise RuntimeError("video decoding needs OpenCV >= 4.11 with FFmpeg (memory streams)")
    raise _corrupt("the video cannot be opened")


def _decodes_from_memory() -> bool:
    """Whether this OpenCV can read a Python stream with FFmpeg (else every open fails)."""
    backends: tuple[int, ...] = getattr(cv2.videoio_registry, "getStreamBufferedBackends", tuple)()
    return cv2.CAP_FFMPEG in backends


def _read(capture: cv2.VideoCapture, sampler: _Sampler, limits: VideoLimits) -> None:
    """Grab frames in order (grab decodes; only inspected frames are converted to BGR)."""
    deadline = time.monotonic() + limits.max_decode_s
    clock = _Clock()
    while _grab(capture):
        t = clock.tick(_get(capture, cv2.CAP_PROP_POS_MSEC) / 1000.0)
        if t > limits.max_duration_s + _EPS:
            return
        if time.monotonic() > deadline:
            raise MediaTooLarge(
                reason="decode_timeout",
                message=f"decoding took longer than {limits.max_decode_s:g} s",
            )
        if sampler.wants(t):
            pixels = _retrieve(capture, limits.max_pixels)
            if pixels is not None:
                sampler.offer(t, pixels)


class _Clock:
    """Timestamps in seconds since the first frame, rising at least ``1/_MAX_FPS`` per
    frame (missing, stuck or backwards timestamps cannot make the pass endless)."""

    def __init__(self) -> None:
        self._origin: float | None = None
        self._last = 0.0

    def tick(self, raw: float) -> float:
        if self._origin is None:
            self._origin = raw if math.isfinite(raw) else 0.0
            return 0.0
        t = raw - self._origin if math.isfinite(raw) else -math.inf
        self._last = max(t, self._last + 1.0 / _MAX_FPS)
        return self._last


@dataclass(frozen=True)
class _Kept:
    timestamp: float
    image: Image.Image
    slot: int | None  # index on the periodic grid (timestamp // interval), if periodic
    scene: bool  # kept for a scene change (counted in the scene budget)


class _Sampler:
    """Decides which frames to inspect and keep; holds at most ``max_frames`` images."""

    def __init__(self, limits: VideoLimits) -> None:
        self._limits = limits
        self._interval = limits.sample_interval_s
        self._scene_budget = limits.max_frames // 3
        self._periodic_budget = limits.max_frames - self._scene_budget
        self._kept: list[_Kept] = []
        self._scenes = 0
        self._next_sample = 0.0
        self._next_check = 0.0
        self._thumb: npt.NDArray[np.int16] | None = None

    def wants(self, t: float) -> bool:
        """Whether the frame at ``t`` must be converted: a sample is due or a check."""
        checking = self._scenes < self._scene_budget and t >= self._next_check - _EPS
        return checking or t >= self._next_sample - _EPS

    def offer(self, t: float, pixels: Pixels) -> None:
        step = self._limits.scene_check_interval_s
        self._next_check = (math.floor((t + _EPS) / step) + 1) * step
        thumb = _thumbnail(pixels) if self._scenes < self._scene_budget else None
        cut = (
            thumb is not None
            and self._thumb is not None
            and float(np.abs(thumb - self._thumb).mean()) > self._limits.scene_change_threshold
        )
        self._thumb = thumb
        slot = math.floor((t + _EPS) / self._interval) if t >= self._next_sample - _EPS else None
        if slot is None and not cut:
            return
        if slot is not None:
            self._next_sample = (slot + 1) * self._interval
        if cut:
            self._scenes += 1
        self._kept.append(_Kept(t, _to_image(pixels, self._limits.max_frame_side), slot, cut))
        if sum(not kept.scene for kept in self._kept) > self._periodic_budget:
            self._thin()

    def _thin(self) -> None:
        """Double the sampling interval: drop periodic frames on odd slots."""
        self._interval *= 2
        survivors = []
        for kept in self._kept:
            slot = None if kept.slot is None or kept.slot % 2 else kept.slot // 2
            if kept.scene or slot is not None:
                survivors.append(replace(kept, slot=slot))
        self._kept = survivors
        last = max((kept.slot for kept in survivors if kept.slot is not None), default=-1)
        self._next_sample = (last + 1) * self._interval

    def frames(self) -> list[VideoFrame]:
        return [VideoFrame(kept.timestamp, kept.image) for kept in self._kept]


def _thumbnail(pixels: Pixels) -> npt.NDArray[np.int16]:
    """Greyscale THUMB_SIDE² thumbnail in about 0.5 ms at any frame size: bilinear to 4x
    the side, then a 4x4 box average (INTER_AREA straight from a full frame takes 1-50 ms)."""
    wide = cv2.resize(pixels, (4 * THUMB_SIDE, 4 * THUMB_SIDE), interpolation=cv2.INTER_LINEAR)
    small = cv2.resize(wide, (THUMB_SIDE, THUMB_SIDE), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(small, cv2.COLOR_BGR2GRAY).astype(np.int16)


def _to_image(pixels: Pixels, max_side: int) -> Image.Image:
    """RGB image of a BGR frame, scaled down (INTER_AREA) to ``max_side`` if larger."""
    height, width = pixels.shape[:2]
    scale = max_side / max(width, height)
    if scale >= 1:
        return Image.fromarray(cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small = cv2.resize(pixels, size, interpolation=cv2.INTER_AREA)
    return Image.fromarray(cv2.cvtColor(small, cv2.COLOR_BGR2RGB))


def _grab(capture: cv2.VideoCapture) -> bool:
    try:
        return bool(capture.grab())
    except cv2.error:
        raise _corrupt("a frame could not be read") from None


def _get(capture: cv2.VideoCapture, prop: int) -> float:
    try:
        return float(capture.get(prop))
    except cv2.error:
        raise _corrupt("a stream property could not be read") from None


def _retrieve(capture: cv2.VideoCapture, max_pixels: int) -> Pixels | None:
    """The grabbed frame as BGR pixels (None if it does not convert); size checked."""
    try:
        ok, pixels = capture.retrieve()
    except cv2.error:
        raise _corrupt("a frame could not be decoded") from None
    if not ok or not isinstance(pixels, np.ndarray) or pixels.dtype != np.uint8:
        return None
    if pixels.ndim != 3 or pixels.shape[2] != 3:
        return None
    _check_pixels(pixels.shape[1], pixels.shape[0], max_pixels)
    return np.asarray(pixels, dtype=np.uint8)


def _check_pixels(width: int, height: int, max_pixels: int) -> None:
    if width < 1 or height < 1:
        raise _corrupt(f"the video frame is {width}x{height} pixels")
    if width * height > max_pixels:
        raise MediaTooLarge(
            reason="too_many_pixels",
            message=f"the video frame is {width}x{height} pixels, the limit is {max_pixels}",
        )


def _corrupt(detail: str) -> MediaRejected:
    return MediaRejected(reason="corrupt", message=f"the video data is corrupt ({detail})")
