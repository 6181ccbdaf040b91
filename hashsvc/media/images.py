"""Safe decoding of untrusted image bytes into a fully loaded RGB image.

Order of checks: byte size, format sniffing (allowed formats only), pixel count from the
header (before any pixel is decoded), frame/page count (from headers only: GIF blocks and
TIFF IFDs are walked by a bounded counter here, APNG/WebP/MPO counts are declared in their
headers), decode of the first frame only, EXIF orientation, RGB. PNG text chunks whose
decompressed size exceeds Pillow's caps (``MAX_TEXT_CHUNK``, ``MAX_TEXT_MEMORY``) are
reported as ``metadata_too_large``.
Every failure caused by the bytes becomes ``MediaRejected`` (or ``MediaTooLarge``);
image bytes are never logged or put into messages.

Global Pillow state: none is changed. Pillow's own decompression-bomb check (warning
above ``Image.MAX_IMAGE_PIXELS``, error above twice that) still runs inside
``Image.open``: its warning is suppressed (our own, usually lower, ``max_pixels`` limit
applies instead) and its error is reported as ``too_many_pixels``, so the effective
limit is ``min(max_pixels, 2 * Image.MAX_IMAGE_PIXELS)``. Pillow's metadata warnings
(malformed EXIF/TIFF tags) are suppressed too; both only around header and EXIF parsing,
never around pixel decoding.
"""

from __future__ import annotations

import struct
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from io import BytesIO

import numpy as np
from PIL import ExifTags, Image, ImageFile, UnidentifiedImageError

from hashsvc.errors import MediaRejected, MediaTooLarge

ALLOWED_FORMATS: tuple[str, ...] = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")
# Pillow reports JPEGs carrying a multi-picture index (phone cameras) as MPO.
_FORMAT_ALIASES = {"MPO": "JPEG"}

# Leading bytes of the allowed formats: bytes that start like an allowed format but do
# not open are reported as corrupt rather than as an unsupported format.
_SIGNATURES: tuple[bytes, ...] = (
    b"\xff\xd8\xff",
    b"\x89PNG\r\n\x1a\n",
    b"GIF87a",
    b"GIF89a",
    b"BM",
    b"II*\x00",
    b"MM\x00*",
    b"II+\x00",
    b"MM\x00+",
)

# What Pillow raises for malformed data. struct.error, IndexError and KeyError are
# defensive: Image.open itself treats the first two as parse failures, and the EXIF
# parser runs after open. (A fuzz run of 10,000 corrupted files raised nothing else.)
_DECODE_ERRORS: tuple[type[BaseException], ...] = (
    UnidentifiedImageError,
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    Image.DecompressionBombError,
    struct.error,
    IndexError,
    KeyError,
)

# warnings.catch_warnings() swaps process-wide state; serialise our uses of it.
_WARNINGS_LOCK = threading.Lock()

# EXIF Orientation value -> the transposition that makes the image upright (as in
# ImageOps.exif_transpose, which would also re-parse and rewrite the metadata).
_ORIENTATION_FIX = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}

# Default frame/page cap (the default of ``Settings.max_image_frames``, which hashing passes);
# only the first frame is decoded.
DEFAULT_MAX_FRAMES = 500

# Pixel cap of RLE-compressed BMPs (compression 1 = RLE8, 2 = RLE4), below ``max_pixels``:
# Pillow decodes them in Python, one loop iteration per padded or RLE4 pixel. Measured
# (uninstrumented): a 4000x4000 RLE4 file of 136 KB takes 2.6 s, 2048x2048 0.8 s; the B5
# finding (326 bytes claiming 1381653x32, one pixel then end-of-line per row) 1.8 s. Real
# RLE BMPs are small legacy palette pictures.
MAX_RLE_BMP_PIXELS = 2048 * 2048

# Pillow's ValueError messages when a PNG text chunk decompresses past its caps.
_TEXT_BOMB_MESSAGES = ("Decompressed data too large", "MAX_TEXT_MEMORY")

_HIGH_BIT_DEPTH_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N"})
_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA", "P"})


def decode_image(
    data: bytes, *, max_bytes: int, max_pixels: int, max_frames: int = DEFAULT_MAX_FRAMES
) -> Image.Image:
    """Decode untrusted bytes into a fully loaded RGB image (first frame, upright).

    Files with more than ``max_frames`` frames or pages are refused (``too_many_frames``)
    from their headers; otherwise only the first frame is decoded."""
    if not data:
        raise MediaRejected(reason="empty", message="the upload is empty")
    if len(data) > max_bytes:
        raise MediaTooLarge(
            reason="too_many_bytes",
            message=f"the upload is {len(data)} bytes, the limit is {max_bytes}",
        )
    with _open(data) as image:
        _check_pixels(image.size, max_pixels)
        if _is_rle_bmp(image):
            _check_pixels(image.size, min(max_pixels, MAX_RLE_BMP_PIXELS), "RLE-compressed BMP")
        _check_frames(image, data, max_frames)
        try:
            image.load()
            with _quiet_pillow():
                orientation = image.getexif().get(ExifTags.Base.Orientation, 1)
            fix = _ORIENTATION_FIX.get(orientation) if isinstance(orientation, int) else None
            return _to_rgb(image if fix is None else image.transpose(fix))
        except _DECODE_ERRORS as exc:
            raise _corrupt(exc) from None


@contextmanager
def _quiet_pillow() -> Iterator[None]:
    """Silence Pillow's bomb and metadata warnings (they become errors or are moot)."""
    with _WARNINGS_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        warnings.simplefilter("ignore", UserWarning)
        yield


def _open(data: bytes) -> ImageFile.ImageFile:
    """Identify the format and read the header; no pixel data is decoded yet."""
    try:
        with _quiet_pillow():
            image = Image.open(BytesIO(data), formats=ALLOWED_FORMATS)
    except Image.DecompressionBombError:
        raise _too_many_pixels(None, None) from None
    except UnidentifiedImageError:
        if data.startswith(_SIGNATURES) or _is_webp(data):
            raise MediaRejected(
                reason="corrupt", message="the image data is corrupt or truncated"
            ) from None
        raise _unsupported() from None
    except _DECODE_ERRORS as exc:
        raise _corrupt(exc) from None
    fmt = _FORMAT_ALIASES.get(image.format or "", image.format)
    if fmt not in ALLOWED_FORMATS:
        image.close()
        raise _unsupported()
    return image


def _check_pixels(size: tuple[int, int], max_pixels: int, kind: str = "") -> None:
    width, height = size
    if width < 1 or height < 1:
        raise MediaRejected(reason="corrupt", message=f"the image is {width}x{height} pixels")
    if width * height > max_pixels:
        raise _too_many_pixels(size, max_pixels, kind)


def _is_rle_bmp(image: ImageFile.ImageFile) -> bool:
    """A BMP whose pixels Pillow would decode with its Python RLE decoder (RLE8, RLE4)."""
    return image.format == "BMP" and any(tile.codec_name == "bmp_rle" for tile in image.tile)


def _check_frames(image: ImageFile.ImageFile, data: bytes, max_frames: int) -> None:
    """Refuse more than ``max_frames`` frames, counted from headers (nothing is decoded)."""
    fmt = _FORMAT_ALIASES.get(image.format or "", image.format)
    if fmt == "GIF":
        frames = gif_frame_count(data, stop=max_frames + 1)
    elif fmt == "TIFF":
        frames = tiff_page_count(data, stop=max_frames + 1)
    else:  # PNG (APNG acTL), WEBP (demuxer), JPEG (MPO index): declared in the header
        try:
            frames = int(getattr(image, "n_frames", 1))
        except _DECODE_ERRORS as exc:
            raise _corrupt(exc) from None
    if frames > max_frames:
        shown = f"more than {max_frames}" if fmt in ("GIF", "TIFF") else str(frames)
        raise MediaTooLarge(
            reason="too_many_frames",
            message=f"the image has {shown} frames or pages, the limit is {max_frames}",
        )


def gif_frame_count(data: bytes, *, stop: int) -> int:
    """Image descriptors in a GIF, counted up to ``stop`` (blocks skipped, never decoded)."""
    if len(data) < 13:
        return 0
    pos = 13 + _colour_table_size(data[10])
    frames = 0
    while pos < len(data) and frames < stop:
        block = data[pos]
        if block == 0x2C:  # image descriptor (+ local colour table, LZW code size, data)
            frames += 1
            if pos + 10 > len(data):
                break
            pos = _skip_sub_blocks(data, pos + 11 + _colour_table_size(data[pos + 9]))
        elif block == 0x21:  # extension: label, then sub-blocks
            pos = _skip_sub_blocks(data, pos + 2)
        else:  # trailer or garbage
            break
    return frames


def _colour_table_size(flags: int) -> int:
    return 3 << ((flags & 7) + 1) if flags & 0x80 else 0


def _skip_sub_blocks(data: bytes, pos: int) -> int:
    while pos < len(data):
        size = data[pos]
        pos += 1 + size
        if size == 0:
            break
    return pos


def tiff_page_count(data: bytes, *, stop: int) -> int:
    """IFDs in a TIFF's chain, counted up to ``stop`` (a loop or a bad offset ends it)."""
    order = "<" if data[:2] == b"II" else ">"
    big = data[2:4] in (b"+\x00", b"\x00+")
    count_fmt, next_fmt, entry = ("Q", "Q", 20) if big else ("H", "I", 12)
    count_size, next_size = struct.calcsize(count_fmt), struct.calcsize(next_fmt)
    first_at = 8 if big else 4
    if len(data) < first_at + next_size:
        return 0
    (offset,) = struct.unpack_from(order + next_fmt, data, first_at)
    seen: set[int] = set()
    pages = 0
    while offset and pages < stop and offset not in seen:
        if offset + count_size > len(data):
            break
        seen.add(offset)
        pages += 1
        (entries,) = struct.unpack_from(order + count_fmt, data, offset)
        next_at = offset + count_size + entries * entry
        if next_at + next_size > len(data):
            break
        (offset,) = struct.unpack_from(order + next_fmt, data, next_at)
    return pages


def _to_rgb(image: Image.Image) -> Image.Image:
    """An RGB copy, detached from the file: 16-bit greyscale is scaled to 8 bits,
    transparency is dropped (the colour under it is kept)."""
    if image.mode in _HIGH_BIT_DEPTH_MODES:
        # The high byte of each 16-bit sample, computed on uint16 (values 0-65535, so no clip):
        # 2 bytes a pixel, where int64 copies of an "I" conversion took 8 (three of them).
        pixels = np.asarray(image)
        image = Image.fromarray((pixels >> 8).astype(np.uint8))
    elif image.mode in _ALPHA_MODES:
        # Via RGBA so palette transparency is resolved without a Pillow warning.
        image = image.convert("RGBA")
    return image.convert("RGB")


def _is_webp(data: bytes) -> bool:
    return data[:4] == b"RIFF" and data[8:12] == b"WEBP"


def _too_many_pixels(
    size: tuple[int, int] | None, max_pixels: int | None, kind: str = ""
) -> MediaTooLarge:
    if size is None or max_pixels is None:
        message = "the image has too many pixels (decompression bomb protection)"
    else:
        message = f"the image is {size[0]}x{size[1]} pixels, the limit is {max_pixels} pixels"
        if kind:
            message += f" for an {kind}"
    return MediaTooLarge(reason="too_many_pixels", message=message)


def _unsupported() -> MediaRejected:
    allowed = ", ".join(ALLOWED_FORMATS)
    return MediaRejected(
        reason="unsupported_format",
        message=f"the upload is not an image in an allowed format ({allowed})",
    )


def _corrupt(exc: BaseException) -> MediaRejected:
    if isinstance(exc, ValueError) and any(m in str(exc) for m in _TEXT_BOMB_MESSAGES):
        return MediaTooLarge(
            reason="metadata_too_large",
            message="the image's text metadata decompresses beyond the allowed size",
        )
    return MediaRejected(
        reason="corrupt",
        message=f"the image data is corrupt or truncated ({type(exc).__name__})",
    )
