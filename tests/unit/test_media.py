"""Tests for hashsvc.media.decode_image: allowed formats, limits, hostile bytes, EXIF
orientation, animation and colour modes."""

from __future__ import annotations

import io
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image

from fixtures import hostile
from hashsvc.errors import MediaRejected, MediaTooLarge
from hashsvc.media import ALLOWED_FORMATS, decode_image
from hashsvc.media.images import DEFAULT_MAX_FRAMES, gif_frame_count, tiff_page_count

IMAGES_DIR = Path(__file__).resolve().parents[2] / "fixtures" / "images"
MAX_BYTES = 20 * 1024 * 1024
MAX_PIXELS = 50_000_000


def decode(data: bytes, **limits: int) -> Image.Image:
    return decode_image(
        data,
        max_bytes=limits.get("max_bytes", MAX_BYTES),
        max_pixels=limits.get("max_pixels", MAX_PIXELS),
        max_frames=limits.get("max_frames", DEFAULT_MAX_FRAMES),
    )


def reject(data: bytes, **limits: int) -> MediaRejected:
    with pytest.raises(MediaRejected) as caught:
        decode(data, **limits)
    return caught.value


def pixels(image: Image.Image) -> npt.NDArray[np.int16]:
    return np.asarray(image, dtype=np.int16)


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    """A non-square fixture photo (640x427), fully loaded."""
    with Image.open(IMAGES_DIR / "rocket.jpg") as image:
        return image.convert("RGB")


@pytest.fixture(scope="module")
def small(photo: Image.Image) -> Image.Image:
    return photo.resize((120, 80))


def plain_decode(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as image:
        return image.convert("RGB")


def test_allowed_formats() -> None:
    assert ALLOWED_FORMATS == ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")


@pytest.mark.parametrize(
    ("fmt", "params", "max_mean_error"),
    [
        ("JPEG", {"quality": 90}, 3.0),
        ("PNG", {}, 0.0),
        ("WEBP", {"quality": 90}, 4.0),
        ("GIF", {}, 12.0),
        ("BMP", {}, 0.0),
        ("TIFF", {}, 0.0),
        ("TIFF", {"compression": "tiff_lzw"}, 0.0),
        ("MPO", {}, 3.0),
    ],
)
def test_allowed_format_decodes(
    photo: Image.Image, fmt: str, params: dict[str, Any], max_mean_error: float
) -> None:
    image = decode(hostile.encode(photo, fmt, **params))
    assert type(image) is Image.Image  # detached from the file, fully loaded
    assert image.mode == "RGB"
    assert image.size == photo.size
    assert np.abs(pixels(image) - pixels(photo)).mean() <= max_mean_error


def test_mpo_counts_as_jpeg(photo: Image.Image) -> None:
    data = hostile.encode(photo, "MPO", save_all=True, append_images=[photo.rotate(180)])
    with Image.open(io.BytesIO(data)) as opened:
        assert opened.format == "MPO"
    assert decode(data).size == photo.size


def test_bomb_png_is_too_many_pixels() -> None:
    data = hostile.decompression_bomb_png()  # 20000x20000, over Pillow's own hard limit
    assert len(data) < 100_000
    error = reject(data)
    assert isinstance(error, MediaTooLarge)
    assert error.reason == "too_many_pixels"
    assert error.status == 413


def test_bomb_in_pillow_warning_range_raises_no_warning() -> None:
    """100 Mpx: Pillow only warns (pytest turns warnings into errors); our limit refuses."""
    error = reject(hostile.decompression_bomb_png(10_000, 10_000))
    assert isinstance(error, MediaTooLarge)
    assert error.reason == "too_many_pixels"
    assert "10000x10000 pixels, the limit is 50000000" in error.message


def test_pixel_limit_checked_from_header() -> None:
    error = reject(hostile.decompression_bomb_png(5_000, 5_000), max_pixels=1_000_000)
    assert isinstance(error, MediaTooLarge)
    assert error.reason == "too_many_pixels"


def test_pixel_limit_is_inclusive(small: Image.Image) -> None:
    data = hostile.encode(small, "PNG")
    assert decode(data, max_pixels=120 * 80).size == (120, 80)
    assert reject(data, max_pixels=120 * 80 - 1).reason == "too_many_pixels"


def test_byte_cap_checked_before_parsing() -> None:
    error = reject(hostile.random_bytes(5000, seed=1), max_bytes=4096)
    assert isinstance(error, MediaTooLarge)
    assert error.reason == "too_many_bytes"
    assert "5000 bytes, the limit is 4096" in error.message


def test_byte_cap_is_inclusive(small: Image.Image) -> None:
    data = hostile.encode(small, "PNG")
    assert decode(data, max_bytes=len(data)).size == small.size
    assert reject(data, max_bytes=len(data) - 1).reason == "too_many_bytes"


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("truncated_jpeg", "corrupt"),
        ("broken_png", "corrupt"),
        ("text", "unsupported_format"),
        ("random", "unsupported_format"),
        ("svg", "unsupported_format"),
        ("ppm", "unsupported_format"),
        ("ico", "unsupported_format"),
        ("empty", "empty"),
    ],
)
def test_hostile_bytes_rejected(small: Image.Image, kind: str, reason: str) -> None:
    samples: dict[str, Callable[[], bytes]] = {
        "truncated_jpeg": lambda: hostile.truncated_jpeg(hostile.encode(small, "JPEG")),
        "broken_png": lambda: hostile.encode(small, "PNG")[:40],
        "text": hostile.text_as_image,
        "random": lambda: hostile.random_bytes(4096, seed=3),
        "svg": hostile.svg_bytes,
        "ppm": lambda: hostile.encode(small, "PPM"),
        "ico": lambda: hostile.encode(small, "ICO"),
        "empty": lambda: b"",
    }
    error = reject(samples[kind]())
    assert type(error) is MediaRejected
    assert error.reason == reason
    assert error.status == 422


ROTATIONS = (Image.Transpose.ROTATE_90, Image.Transpose.ROTATE_180, Image.Transpose.ROTATE_270)


@pytest.mark.parametrize(
    ("orientation", "transpose"),
    [
        (6, Image.Transpose.ROTATE_270),
        (8, Image.Transpose.ROTATE_90),
        (3, Image.Transpose.ROTATE_180),
    ],
)
def test_exif_orientation_applied(
    photo: Image.Image, orientation: int, transpose: Image.Transpose
) -> None:
    data = hostile.exif_rotated_jpeg(photo, orientation)
    stored = plain_decode(data)  # the pixels as stored, orientation ignored
    image = decode(data)
    if orientation in (6, 8):
        assert image.size == (photo.height, photo.width)
    assert np.array_equal(pixels(image), pixels(stored.transpose(transpose)))
    for other in ROTATIONS:
        if other is not transpose:
            assert not np.array_equal(pixels(image), pixels(stored.transpose(other)))


def test_animated_gif_gives_first_frame() -> None:
    data = hostile.animated_gif()
    with Image.open(io.BytesIO(data)) as opened:
        assert getattr(opened, "n_frames", 1) == 2
    image = decode(data)
    assert image.mode == "RGB"
    assert image.size == (64, 48)
    assert image.getcolors() == [(64 * 48, (255, 0, 0))]


def test_animated_webp_gives_first_frame(small: Image.Image) -> None:
    blue = Image.new("RGB", small.size, (0, 0, 255))
    data = hostile.encode(small, "WEBP", lossless=True, save_all=True, append_images=[blue])
    assert np.array_equal(pixels(decode(data)), pixels(small))


def test_grayscale_png_comes_back_rgb(small: Image.Image) -> None:
    grey = small.convert("L")
    image = decode(hostile.encode(grey, "PNG"))
    assert image.mode == "RGB"
    rgb = pixels(image)
    for channel in range(3):
        assert np.array_equal(rgb[..., channel], pixels(grey))


def test_16_bit_grayscale_is_scaled_to_8_bits() -> None:
    ramp = (np.arange(256, dtype=np.uint16) * 257).reshape(16, 16)  # 0..65535
    image = decode(hostile.encode(Image.fromarray(ramp), "PNG"))
    assert image.mode == "RGB"
    assert np.array_equal(pixels(image)[..., 0], np.arange(256).reshape(16, 16))


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P"])
def test_transparency_is_dropped_without_warning(small: Image.Image, mode: str) -> None:
    source = small.convert(mode)
    params: dict[str, Any] = {"transparency": 0} if mode == "P" else {}
    image = decode(hostile.encode(source, "PNG", **params))
    assert image.mode == "RGB"
    assert image.size == small.size


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF"])
def test_corrupted_bytes_only_raise_media_rejected(small: Image.Image, fmt: str) -> None:
    source = hostile.exif_rotated_jpeg(small) if fmt == "JPEG" else hostile.encode(small, fmt)
    outcomes = []
    for data in hostile.corrupted(source, seed=len(fmt), count=150):
        try:
            image = decode(data, max_pixels=1_000_000)
        except MediaRejected as error:
            outcomes.append(error.reason)
        else:
            outcomes.append(image.mode)
    assert set(outcomes) <= {"RGB", "corrupt", "unsupported_format", "too_many_pixels"}
    assert "corrupt" in outcomes


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda: hostile.many_frames_gif(DEFAULT_MAX_FRAMES + 1), "too_many_frames"),
        (lambda: hostile.many_frames_apng(DEFAULT_MAX_FRAMES + 1), "too_many_frames"),
        (lambda: hostile.many_pages_tiff(DEFAULT_MAX_FRAMES + 1), "too_many_frames"),
        (lambda: hostile.png_ztxt_bomb(8_000_000), "metadata_too_large"),
        (hostile.webp_claiming, "too_many_pixels"),
        (hostile.jpeg_claiming, "too_many_pixels"),
        (hostile.gif_huge_screen, "too_many_pixels"),
    ],
)
def test_bombs_are_refused_from_headers(make: Callable[[], bytes], reason: str) -> None:
    error = reject(make())
    assert type(error) is MediaTooLarge
    assert error.reason == reason


@pytest.mark.parametrize("fmt", ["GIF", "TIFF"])
def test_frame_cap_is_inclusive(fmt: str) -> None:
    make = hostile.many_frames_gif if fmt == "GIF" else hostile.many_pages_tiff
    data = make(5)
    assert decode(data, max_frames=5).size == (4, 4)
    assert reject(data, max_frames=4).reason == "too_many_frames"


def test_frame_counters_are_bounded() -> None:
    gif = hostile.many_frames_gif(50)
    assert gif_frame_count(gif, stop=10**6) == 50
    assert gif_frame_count(gif, stop=7) == 7
    assert gif_frame_count(gif[:20], stop=100) <= 1
    tiff = hostile.many_pages_tiff(50)
    assert tiff_page_count(tiff, stop=10**6) == 50
    assert tiff_page_count(tiff, stop=7) == 7
    looped = bytearray(hostile.many_pages_tiff(1))
    first = struct.unpack_from("<I", looped, 4)[0]
    entries = struct.unpack_from("<H", looped, first)[0]
    struct.pack_into("<I", looped, first + 2 + 12 * entries, first)  # the IFD points at itself
    assert tiff_page_count(bytes(looped), stop=100) == 1
