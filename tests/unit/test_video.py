"""Tests for hashsvc.media.video: container sniffing, frame sampling (periodic + scene
changes), PDQ fidelity of sampled frames, caps, hostile inputs and no disk writes."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import itertools
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from PIL import Image

from fixtures import make_videos as mv
from fixtures.make_variants import IMAGES_DIR
from hashsvc.config import Settings
from hashsvc.errors import MediaRejected, MediaTooLarge
from hashsvc.media import VideoFrame, VideoLimits, is_video, sample_frames
from hashsvc.media import video as video_module
from hashsvc.signals import SIGNALS

LIMITS = VideoLimits(
    max_bytes=20 * 1024 * 1024, max_duration_s=600, max_frames=300, max_pixels=4096 * 2160
)
PDQ_THRESHOLD = 31


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The test clips, written once per module (320x240, 10 fps unless named otherwise)."""
    root = tmp_path_factory.mktemp("videos")
    standard = mv.standard_clip(root / "standard.mp4")
    photos = [mv.PHOTO_A, mv.PHOTO_B, mv.PHOTO_C]
    return {
        "standard": standard,
        "standard_avi": mv.standard_clip(root / "standard.avi"),
        # A, B, C for 1.5 s each: cuts at 1.5 s (between periodic samples) and 3.0 s.
        "offbeat": mv.make_clip(root / "offbeat.mp4", photos, 1.5),
        "cut": mv.cut_clip(standard, root / "cut.mp4", 1.0, 5.0, (480, 360)),
        "unrelated": mv.unrelated_clip(root / "unrelated.mp4"),
        "long": mv.long_clip(root / "long.mp4", 30.0, (160, 120), 5.0, shot_s=3.0),
    }


def sample(source: bytes | Path, **limits: Any) -> list[VideoFrame]:
    return sample_frames(source, limits=dataclasses.replace(LIMITS, **limits))


def reject(source: bytes | Path, **limits: Any) -> MediaRejected:
    with pytest.raises(MediaRejected) as caught:
        sample(source, **limits)
    return caught.value


def times(frames: list[VideoFrame]) -> list[float]:
    return [round(frame.timestamp, 3) for frame in frames]


def pdq(image: Image.Image) -> bytes:
    return SIGNALS["pdq"].hash_image(image).code


def distance(a: bytes, b: bytes) -> int:
    xor = np.frombuffer(a, dtype=np.uint8) ^ np.frombuffer(b, dtype=np.uint8)
    return int(np.bitwise_count(xor).sum())


def nearest(code: bytes, frames: list[VideoFrame]) -> int:
    return min(distance(code, pdq(frame.image)) for frame in frames)


# --- sniffing ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "head",
    [
        b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00",
        b"\x00\x00\x00\x14ftypqt  \x00\x00\x02\x00",
        b"\x00\x00\x00\x1cftyp3gp4\x00\x00\x02\x00",
        b"\x1a\x45\xdf\xa3\x9fB\x86\x81",
        b"RIFF\xaa0\x00\x00AVI LIST",
    ],
)
def test_is_video_accepts_allowed_containers(head: bytes) -> None:
    assert is_video(head)


@pytest.mark.parametrize(
    "head",
    [
        b"",
        b"\x00\x00\x00\x18ftyp",  # too short to tell
        b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00",  # HEIF still image
        b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00",  # AVIF still image
        b"RIFF\x10\x00\x00\x00WEBPVP8 ",
        b"RIFF\x10\x00\x00\x00WAVEfmt ",
        b"\xff\xd8\xff\xe0\x00\x10JFIF\x00",
        b"#EXTM3U\n#EXT-X-VERSION:3\n",
        b"ffconcat version 1.0\n",
        b"\x00\x00\x01\xba\x44\x00\x04\x00\x04\x01\x01\x89",  # MPEG-PS: not allowed
    ],
)
def test_is_video_refuses_everything_else(head: bytes) -> None:
    assert not is_video(head)


@pytest.mark.parametrize("suffix", [".mp4", ".mov", ".3gp", ".avi", ".mkv", ".webm"])
def test_every_allowed_container_decodes(tmp_path: Path, suffix: str) -> None:
    path = mv.make_clip(tmp_path / f"clip{suffix}", [mv.PHOTO_A], 0.5, (160, 120), 10)
    assert is_video(path.read_bytes()[: video_module.SNIFF_BYTES])
    frames = sample(path)
    assert times(frames) == [0.0]
    assert frames[0].image.size == (160, 120)


# --- sampling ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["standard", "standard_avi"])
def test_one_frame_per_second_from_the_first(clips: dict[str, Path], name: str) -> None:
    """Cuts at 2 s and 4 s fall on periodic samples: 6 s of video give 6 frames."""
    frames = sample(clips[name])
    assert times(frames) == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    assert all(frame.image.mode == "RGB" and frame.image.size == (320, 240) for frame in frames)


def test_scene_changes_add_frames(clips: dict[str, Path]) -> None:
    """The cut at 1.5 s adds a frame; the one at 3.0 s coincides with a periodic sample."""
    assert times(sample(clips["offbeat"])) == [0.0, 1.0, 1.5, 2.0, 3.0, 4.0]


def test_scene_threshold_and_interval_are_honoured(clips: dict[str, Path]) -> None:
    assert times(sample(clips["offbeat"], scene_change_threshold=255)) == [0, 1, 2, 3, 4]
    assert times(sample(clips["offbeat"], sample_interval_s=2.0)) == [0.0, 1.5, 2.0, 3.0, 4.0]


def test_frames_match_the_photos_shown(clips: dict[str, Path]) -> None:
    frames = sample(clips["standard"])
    for name in (mv.PHOTO_A, mv.PHOTO_B, mv.PHOTO_C):
        assert nearest(pdq(mv.fixture_photo(name)), frames) <= PDQ_THRESHOLD, name


def test_unrelated_clip_matches_none_of_the_photos(clips: dict[str, Path]) -> None:
    frames = sample(clips["unrelated"])
    for name in (mv.PHOTO_A, mv.PHOTO_B, mv.PHOTO_C):
        assert nearest(pdq(mv.fixture_photo(name)), frames) > 3 * PDQ_THRESHOLD, name


def test_a_cut_reencoded_at_another_size_matches_the_original(clips: dict[str, Path]) -> None:
    original = sample(clips["standard"])
    cut = sample(clips["cut"])
    assert cut[0].image.size == (480, 360)
    assert times(cut) == [0.0, 1.0, 2.0, 3.0]
    for frame in cut:
        assert nearest(pdq(frame.image), original) <= PDQ_THRESHOLD, frame.timestamp


def test_bytes_and_path_give_the_same_frames(clips: dict[str, Path]) -> None:
    from_path = sample(clips["offbeat"])
    from_bytes = sample(clips["offbeat"].read_bytes())
    assert times(from_bytes) == times(from_path)
    for a, b in zip(from_path, from_bytes, strict=True):
        assert np.array_equal(np.asarray(a.image), np.asarray(b.image))


def test_large_frames_are_scaled_down(clips: dict[str, Path]) -> None:
    frames = sample(clips["cut"], max_frame_side=240)
    assert {frame.image.size for frame in frames} == {(240, 180)}


# --- caps ----------------------------------------------------------------------------------


def test_max_frames_thins_periodic_samples_over_the_whole_video(clips: dict[str, Path]) -> None:
    # 3 frames: 1 for scene changes, 2 periodic; the interval doubles to 2 s at t=3.
    assert times(sample(clips["standard"], max_frames=3)) == [0.0, 2.0, 4.0]
    assert times(sample(clips["standard"], max_frames=1)) == [0.0]


def test_long_video_keeps_coverage_within_max_frames(clips: dict[str, Path]) -> None:
    frames = sample(clips["long"], max_frames=6)  # 30 s, a new photo every 3 s
    assert len(frames) <= 6
    assert frames[0].timestamp == 0.0
    assert frames[-1].timestamp >= 24.0
    assert times(frames) == sorted(times(frames))


class CountingCapture:
    """Wraps cv2.VideoCapture, counting grab() calls."""

    grabs = 0

    def __init__(self, *args: Any) -> None:
        self._inner = REAL_CAPTURE(*args)

    def grab(self) -> bool:
        CountingCapture.grabs += 1
        return bool(self._inner.grab())

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


REAL_CAPTURE = cv2.VideoCapture


def test_max_duration_stops_reading(
    clips: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    CountingCapture.grabs = 0
    monkeypatch.setattr(cv2, "VideoCapture", CountingCapture)
    assert times(sample(clips["standard"], max_duration_s=2.5)) == [0.0, 1.0, 2.0]
    assert CountingCapture.grabs == 27  # frames at 0.0 .. 2.5 s, and the one after


def test_timestamps_always_advance() -> None:
    clock = video_module._Clock()
    stamps = [clock.tick(raw) for raw in (5.0, 5.0, 5.0, float("nan"), 1.0, 6.0)]
    assert stamps[0] == 0.0
    assert all(b > a for a, b in itertools.pairwise(stamps))
    assert stamps[-1] == 1.0


# --- hostile and oversized inputs ----------------------------------------------------------


def hostile_inputs(clips: dict[str, Path]) -> dict[str, tuple[bytes, str]]:
    standard = clips["standard"].read_bytes()
    return {
        "empty": (b"", "empty"),
        "truncated_mp4": (mv.truncated(standard), "corrupt"),
        "header_only_mp4": (standard[:64], "corrupt"),
        "ftyp_junk": (mv.ftyp_junk(), "corrupt"),
        "ebml_junk": (b"\x1a\x45\xdf\xa3" + bytes(range(256)) * 8, "corrupt"),
        "avi_junk": (b"RIFF\x00\x10\x00\x00AVI LIST" + bytes(4096), "corrupt"),
        "hls_playlist": (mv.hls_playlist(), "unsupported_format"),
        "ffconcat": (mv.ffconcat_script(), "unsupported_format"),
        "jpeg": ((IMAGES_DIR / "astronaut.jpg").read_bytes(), "unsupported_format"),
        "text": (b"just some text, not a video\n" * 10, "unsupported_format"),
    }


HOSTILE = [
    "empty",
    "truncated_mp4",
    "header_only_mp4",
    "ftyp_junk",
    "ebml_junk",
    "avi_junk",
    "hls_playlist",
    "ffconcat",
    "jpeg",
    "text",
]


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_bytes_are_rejected(clips: dict[str, Path], name: str) -> None:
    data, reason = hostile_inputs(clips)[name]
    error = reject(data)
    assert error.reason == reason
    assert not isinstance(error, MediaTooLarge)


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_files_are_rejected(clips: dict[str, Path], tmp_path: Path, name: str) -> None:
    data, reason = hostile_inputs(clips)[name]
    path = tmp_path / "upload.mp4"
    path.write_bytes(data)
    assert reject(path).reason == reason


def test_too_many_bytes(clips: dict[str, Path]) -> None:
    size = clips["standard"].stat().st_size
    for source in (clips["standard"], clips["standard"].read_bytes()):
        error = reject(source, max_bytes=size - 1)
        assert isinstance(error, MediaTooLarge)
        assert error.reason == "too_many_bytes"
    assert sample(clips["standard"], max_bytes=size)


def test_too_many_pixels(clips: dict[str, Path]) -> None:
    error = reject(clips["standard"], max_pixels=320 * 240 - 1)
    assert isinstance(error, MediaTooLarge)
    assert error.reason == "too_many_pixels"
    assert sample(clips["standard"], max_pixels=320 * 240)


def test_decode_budget(clips: dict[str, Path]) -> None:
    error = reject(clips["standard"], max_decode_s=1e-9)
    assert isinstance(error, MediaTooLarge)
    assert error.reason == "decode_timeout"


def test_truncated_avi_yields_the_frames_before_the_cut(clips: dict[str, Path]) -> None:
    data = clips["standard_avi"].read_bytes()
    frames = sample(mv.truncated(data, 0.5))
    assert times(frames) == [0.0, 1.0, 2.0]


class FailingCapture(CountingCapture):
    def grab(self) -> bool:
        raise cv2.error("simulated decoder failure")


def test_opencv_errors_become_corrupt(
    clips: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cv2, "VideoCapture", FailingCapture)
    assert reject(clips["standard"]).reason == "corrupt"


class UnopenableCapture(CountingCapture):
    def isOpened(self) -> bool:
        return False


def test_opencv_without_stream_support_is_a_server_error(
    clips: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cv2.videoio_registry, "getStreamBufferedBackends", tuple)
    monkeypatch.setattr(cv2, "VideoCapture", UnopenableCapture)
    with pytest.raises(RuntimeError, match=r"OpenCV >= 4\.11"):
        sample(clips["standard"])


def test_path_names_are_never_interpreted(clips: dict[str, Path], tmp_path: Path) -> None:
    """FFmpeg reads the open file, not the name: protocol-like names are just names."""
    path = tmp_path / "concat:cut.mp4|pipe:0"
    path.write_bytes(clips["cut"].read_bytes())
    assert times(sample(path)) == [0.0, 1.0, 2.0, 3.0]


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty temporary directory that ``tempfile`` (and TMPDIR readers) would use."""
    spool = tmp_path / "spool"
    spool.mkdir()
    monkeypatch.setenv("TMPDIR", str(spool))
    monkeypatch.setattr(tempfile, "tempdir", str(spool))
    return spool


@pytest.mark.parametrize(
    "make",
    [
        lambda clips: clips["standard"].read_bytes(),
        lambda clips: mv.truncated(clips["standard"].read_bytes()),
        lambda clips: mv.ftyp_junk(),
    ],
    ids=["success", "truncated", "junk"],
)
def test_nothing_is_written_to_disk(
    clips: dict[str, Path], private_tmp: Path, make: Callable[[dict[str, Path]], bytes]
) -> None:
    with contextlib.suppress(MediaRejected):
        sample(make(clips))
    assert list(private_tmp.iterdir()) == []


def test_memory_stream_is_what_opencv_reads(
    clips: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[Any] = []

    def spy(source: Any, *args: Any) -> Any:
        opened.append(source)
        return REAL_CAPTURE(source, *args)

    monkeypatch.setattr(cv2, "VideoCapture", spy)
    sample(clips["standard"].read_bytes())
    sample(clips["standard"])
    assert isinstance(opened[0], io.BytesIO)
    assert isinstance(opened[1], io.BufferedReader)


# --- limits and settings -------------------------------------------------------------------


@pytest.mark.parametrize(
    "change", [{"max_frames": 0}, {"sample_interval_s": 0.0}, {"scene_change_threshold": -1}]
)
def test_invalid_limits_are_refused(change: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="video limits"):
        dataclasses.replace(LIMITS, **change)


def test_settings_build_the_limits() -> None:
    settings = Settings(
        max_video_bytes=5000,
        max_video_duration_s=12.5,
        max_video_frames=7,
        max_video_frame_pixels=20_000,
        video_sample_interval_s=0.5,
        video_scene_threshold=12.0,
        video_decode_timeout_s=9.0,
    )
    limits = settings.video_limits()
    assert (limits.max_bytes, limits.max_duration_s, limits.max_frames) == (5000, 12.5, 7)
    assert (limits.max_pixels, limits.sample_interval_s) == (20_000, 0.5)
    assert (limits.scene_change_threshold, limits.max_decode_s) == (12.0, 9.0)
    assert Settings().video_min_matching_frames == 2
