"""Test media written on the fly: fixture photos in the formats and shapes a victim's device
holds (EXIF-rotated JPEGs, GIF, BMP, opaque RGBA PNG, a large photo), synthetic flat and
gradient pictures, and a short VP8 WebM video made of two fixture photos."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from fixtures.make_variants import ALL_VARIANTS, encode, load_photo, photo_paths, variant_file
from hashsvc.signals.lowinfo import radial_gradient

PHOTOS = {path.stem: path for path in photo_paths()}


def exif_rotated(image: Image.Image, orientation: int) -> bytes:
    """A JPEG whose stored pixels are turned, with the EXIF tag that turns them upright."""
    undo = {
        3: Image.Transpose.ROTATE_180,
        6: Image.Transpose.ROTATE_90,
        8: Image.Transpose.ROTATE_270,
    }
    stored = image.convert("RGB").transpose(undo[orientation])
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(stored, "JPEG", quality=92, exif=exif.tobytes())


def picture_files(directory: Path) -> list[Path]:
    """Every fixture photo as committed, its everyday and hard variants, and more formats."""
    directory.mkdir(parents=True, exist_ok=True)
    files: dict[str, bytes] = {}
    for stem, path in PHOTOS.items():
        files[path.name] = path.read_bytes()
        image = load_photo(path)
        for name in ALL_VARIANTS:
            data, suffix = variant_file(image, name)
            files[f"{stem}__{name}{suffix}"] = data
    coffee, chelsea = load_photo(PHOTOS["coffee"]), load_photo(PHOTOS["chelsea"])
    files["coffee__exif6.jpg"] = exif_rotated(coffee, 6)
    files["chelsea__exif3.jpg"] = exif_rotated(chelsea, 3)
    files["rocket__exif8.jpg"] = exif_rotated(load_photo(PHOTOS["rocket"]), 8)
    files["chelsea__palette.gif"] = encode(
        chelsea.convert("P", palette=Image.Palette.ADAPTIVE), "GIF"
    )
    files["coffee__bitmap.bmp"] = encode(coffee, "BMP")
    files["rocket__opaque_rgba.png"] = encode(load_photo(PHOTOS["rocket"]).convert("RGBA"), "PNG")
    hubble = load_photo(PHOTOS["hubble_deep_field"])
    large = hubble.resize((hubble.width * 4, hubble.height * 4), Image.Resampling.BICUBIC)
    files["hubble__large.jpg"] = encode(large, "JPEG", quality=90)
    paths = []
    for name, data in sorted(files.items()):
        target = directory / name
        target.write_bytes(data)
        paths.append(target)
    return paths


def flat_picture(path: Path) -> Path:
    """A flat beige picture: PDQ quality 0."""
    path.write_bytes(encode(Image.new("RGB", (300, 200), (224, 172, 140)), "PNG"))
    return path


def radial_gradient_image(size: tuple[int, int] = (300, 200)) -> Image.Image:
    """A radial gradient the page's checks let through (PDQ quality 54, balanced bits) and
    that the server refuses: its codes lie close to those of its synthetic gradients."""
    return radial_gradient((0, 0, 0), (255, 255, 255), (0.3, 0.6), size)


def gradient_picture(path: Path) -> Path:
    path.write_bytes(encode(radial_gradient_image(), "PNG"))
    return path


def video_frames(path: Path, indices: list[int]) -> list[Image.Image]:
    """Frames of a video as OpenCV (FFmpeg) decodes them, as RGB pictures."""
    capture = cv2.VideoCapture(str(path))
    frames: list[Image.Image] = []
    try:
        index = 0
        while len(frames) < len(indices):
            ok, bgr = capture.read()
            if not ok:
                raise ValueError(f"{path.name} has no frame {indices[len(frames)]}")
            if index in indices:
                frames.append(Image.fromarray(np.ascontiguousarray(bgr[:, :, ::-1])))
            index += 1
    finally:
        capture.release()
    return frames


def two_photo_video(path: Path, first: str, second: str, *, seconds_each: int = 2) -> Path:
    """A VP8 WebM at 5 frames per second: ``first`` then ``second``, ``seconds_each`` each."""
    pictures = [load_photo(PHOTOS[first]), load_photo(PHOTOS[second])]
    return write_video(path, pictures, seconds_each=seconds_each)


def write_video(path: Path, pictures: list[Image.Image], *, seconds_each: int = 2) -> Path:
    """A 480x320 VP8 WebM at 5 frames per second showing each picture ``seconds_each``."""
    size = (480, 320)
    fps = 5
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"VP80"), fps, size)
    if not writer.isOpened():
        raise RuntimeError("OpenCV cannot write VP8 WebM here")
    try:
        for picture in pictures:
            rgb = np.asarray(picture.convert("RGB").resize(size))
            bgr = np.ascontiguousarray(rgb[:, :, ::-1])
            for _ in range(fps * seconds_each):
                writer.write(bgr)
    finally:
        writer.release()
    return path
