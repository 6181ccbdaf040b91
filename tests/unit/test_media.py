"""Tests for hashsvc.media.decode_image: allowed formats, limits, hostile bytes, EXIF
orientation, animation and colour modes."""

from __future__ import annotations

import io
import json
import struct
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image

from fixtures import hostile
from hashsvc.config import Settings
from hashsvc.errors import MediaRejected, MediaTooLarge
from hashsvc.hashing import hash_bytes
from hashsvc.media import ALLOWED_FORMATS, decode_image
from hashsvc.media.images import (
    DEFAULT_MAX_FRAMES,
    MAX_RLE_BMP_PIXELS,
    gif_frame_count,
    tiff_page_count,
)

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


@pytest.mark.parametrize("fmt", ["PNG", "TIFF"])
def test_16_bit_byte_orders_keep_the_high_byte(fmt: str) -> None:
    """PNG stores 16-bit samples big-endian (Pillow: I;16B or I;16), TIFF as written (I;16)."""
    rng = np.random.default_rng(16)
    samples = rng.integers(0, 65536, size=(24, 40), dtype=np.uint16)
    image = decode(hostile.encode(Image.fromarray(samples), fmt))
    assert np.array_equal(pixels(image)[..., 1], samples >> 8)


_MEMORY_PROBE = """
import json, struct, sys, zlib
from hashsvc.media import decode_image

def status_kib(field):  # Linux: VmRSS (resident now), VmHWM (peak resident)
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field + ":"))

def chunk(kind, body):
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

side = int(sys.argv[1])  # a 16-bit grey ramp, streamed row by row: the probe itself stays small
row = b"\\x00" + b"".join((x * 65535 // (side - 1)).to_bytes(2, "big") for x in range(side))
packer = zlib.compressobj(9)
idat = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
header = struct.pack(">IIBBBBB", side, side, 16, 0, 0, 0, 0)
chunks = chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
data = b"\\x89PNG\\r\\n\\x1a\\n" + chunks
before = status_kib("VmRSS")
image = decode_image(data, max_bytes=len(data), max_pixels=side * side)
after = status_kib("VmHWM")
print(json.dumps({"bytes": len(data), "mode": image.mode, "growth_kib": after - before}))
"""


def test_16_bit_decode_memory_is_bounded() -> None:
    """A 16-bit 4000x4000 PNG (16 Mpx): resident memory grows by less than 12 bytes a pixel
    (the 16-bit image, its uint16 copy and shift, the 8-bit and RGB results: 9 measured). The
    int64 path this replaced grew by 26 (4000x4000: +398 MB, now +139 MB; 7000x7000: +1,216 MB
    in 4.3 s, now +422 MB in 0.8 s)."""
    side = 4000
    result = subprocess.run(
        [sys.executable, "-c", _MEMORY_PROBE, str(side)],
        capture_output=True,
        cwd=Path(__file__).resolve().parents[2],
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-2000:]
    outcome = json.loads(result.stdout.decode().splitlines()[-1])
    print(f"\n16-bit {side}x{side} PNG decode: {outcome}")
    assert outcome["mode"] == "RGB"
    assert outcome["growth_kib"] * 1024 < 12 * side * side, outcome


def rle_bmp(width: int, height: int, rows: list[bytes], *, rle4: bool) -> bytes:
    """An RLE8 (compression 1) or RLE4 (2) BMP: 16-colour palette, ``rows`` of RLE codes
    (bottom row first), each ended by end-of-line, then end-of-bitmap. Pillow writes none."""
    palette = b"".join(bytes((17 * i, 255 - 17 * i, 8 * i, 0)) for i in range(16))
    codes = b"".join(row + b"\x00\x00" for row in rows) + b"\x00\x01"
    offset = 14 + 40 + len(palette)
    info = struct.pack(
        "<IiiHHIIiiII", 40, width, height, 1, 4 if rle4 else 8, 2 if rle4 else 1, len(codes),
        2835, 2835, 16, 0,
    )  # fmt: skip
    header = b"BM" + struct.pack("<IHHI", offset + len(codes), 0, 0, offset)
    return header + info + palette + codes


def test_rle_bmps_decode() -> None:
    # RLE8: rows of runs (count, colour index); RLE4: runs alternate two indices per byte.
    rows8 = [bytes((3, y % 16, 5, (y + 1) % 16)) for y in range(6)]
    image = decode(rle_bmp(8, 6, rows8, rle4=False))
    expected = plain_decode(rle_bmp(8, 6, rows8, rle4=False))
    assert image.size == (8, 6)
    assert np.array_equal(pixels(image), pixels(expected))
    indices = np.asarray(Image.open(io.BytesIO(rle_bmp(8, 6, rows8, rle4=False))))
    assert indices[-1].tolist() == [0, 0, 0, 1, 1, 1, 1, 1]  # bottom-up: the first row is last
    rows4 = [bytes((7, 0x12)) for _ in range(5)]
    image = decode(rle_bmp(7, 5, rows4, rle4=True))
    indices = np.asarray(Image.open(io.BytesIO(rle_bmp(7, 5, rows4, rle4=True))))
    assert indices[0].tolist() == [1, 2, 1, 2, 1, 2, 1]
    assert np.array_equal(pixels(image), pixels(plain_decode(rle_bmp(7, 5, rows4, rle4=True))))


@pytest.mark.parametrize("rle4", [False, True])
def test_rle_bmp_pixel_cap(rle4: bool) -> None:
    """RLE BMPs (decoded by Pillow in Python) have their own, lower cap, checked from the
    header: inclusive at 2048x2048, refused above it even under ``max_pixels``."""
    assert MAX_RLE_BMP_PIXELS == 2048 * 2048 < MAX_PIXELS
    run = bytes((255, 0x12)) * 8 + bytes((8, 0x12))  # 2048 pixels
    assert decode(rle_bmp(2048, 2048, [run] * 2048, rle4=rle4)).size == (2048, 2048)
    # The B5 finding's shape: a few codes, a huge claimed row (one pixel, then end-of-line).
    error = reject(rle_bmp(1_381_653, 32, [bytes((1, 1))] * 32, rle4=rle4))
    assert type(error) is MediaTooLarge
    assert error.reason == "too_many_pixels"
    assert f"the limit is {MAX_RLE_BMP_PIXELS} pixels for an RLE-compressed BMP" in str(error)
    assert reject(rle_bmp(2049, 2048, [run] * 2048, rle4=rle4)).reason == "too_many_pixels"
    # A lower general limit still applies to them.
    assert reject(rle_bmp(64, 64, [], rle4=rle4), max_pixels=4095).reason == "too_many_pixels"


def test_uncompressed_bmps_keep_the_general_pixel_cap() -> None:
    big = Image.new("1", (2100, 2100), 1)  # 4.4 Mpx, above the RLE cap; 1 bit a pixel
    data = hostile.encode(big, "BMP")
    assert decode(data).size == (2100, 2100)


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


def test_frame_cap_is_a_setting() -> None:
    """``Settings.max_image_frames`` reaches the decoder through ``hash_bytes`` (every scan
    path, the CLI and the sandbox hash with it)."""
    assert Settings().max_image_frames == DEFAULT_MAX_FRAMES
    gif = hostile.many_frames_gif(5)
    assert {h.signal for h in hash_bytes(gif, Settings(max_image_frames=5))} == {"pdq", "phash"}
    with pytest.raises(MediaTooLarge) as caught:
        hash_bytes(gif, Settings(max_image_frames=4))
    assert caught.value.reason == "too_many_frames"
    assert "the limit is 4" in caught.value.message
