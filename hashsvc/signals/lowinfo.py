"""Synthetic low-information images: flat colours, linear and radial gradients, two-tone
halves and near-flat noise. Their hashes form each signal's set of degenerate codes;
the generator is deterministic, so the set is the same on every machine."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import numpy as np
import numpy.typing as npt
from PIL import Image

Color = tuple[int, int, int]
Size = tuple[int, int]

# Square and both 4:3 orientations: gradient and two-tone hashes depend on the aspect
# ratio, hardly on the size (both hashes downsample first), so the images stay small.
SIZES: tuple[Size, ...] = ((128, 128), (128, 96), (96, 128))
# Flat images hash to rounding noise that depends on the exact size.
FLAT_SIZES: tuple[Size, ...] = ((64, 64), (128, 128), (256, 256), (512, 384), (384, 512))
FLAT_COLORS: tuple[Color, ...] = (
    (0, 0, 0),
    (255, 255, 255),
    (128, 128, 128),
    (64, 64, 64),
    (192, 192, 192),
    (224, 172, 140),
    (120, 80, 60),
    (255, 0, 0),
    (0, 160, 0),
    (0, 64, 255),
)
COLOR_PAIRS: tuple[tuple[Color, Color], ...] = (
    ((0, 0, 0), (255, 255, 255)),
    ((200, 40, 40), (40, 40, 200)),
    ((110, 110, 110), (150, 150, 150)),
)
ANGLES = tuple(range(0, 360, 45))
# Radial pHash codes depend on where the centre is (in fractions of width/height): a grid
# of step 0.1 puts 80 % of random centres within pHash distance 10 of a grid point.
_STEPS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
RADIAL_CENTRES: tuple[tuple[float, float], ...] = tuple((x, y) for x in _STEPS for y in _STEPS)
NOISE_LEVELS = (64, 128, 192)
NOISE_AMPLITUDES = (1.0, 3.0)


def low_information_images() -> Iterator[Image.Image]:
    """Yield every synthetic low-information RGB image, in a fixed order."""
    for size in FLAT_SIZES:
        for color in FLAT_COLORS:
            yield Image.new("RGB", size, color)
    black, white = COLOR_PAIRS[0]
    for centre in RADIAL_CENTRES:
        yield radial_gradient(black, white, centre, SIZES[0])
        yield radial_gradient(white, black, centre, SIZES[0])
    for size in SIZES:
        for start, end in COLOR_PAIRS:
            for angle in ANGLES:
                yield linear_gradient(start, end, angle, size)
            for vertical, flipped in itertools.product((True, False), repeat=2):
                first, second = (end, start) if flipped else (start, end)
                yield two_tone(first, second, vertical=vertical, size=size)
    for seed, (level, amplitude) in enumerate(itertools.product(NOISE_LEVELS, NOISE_AMPLITUDES)):
        yield near_flat_noise(level, amplitude, seed=seed, size=SIZES[0])


def linear_gradient(start: Color, end: Color, angle_deg: float, size: Size) -> Image.Image:
    """A linear gradient from ``start`` to ``end`` along ``angle_deg`` (0 = left to right)."""
    x, y = _unit_grid(size)
    angle = np.deg2rad(angle_deg)
    t = (x - 0.5) * np.cos(angle) + (y - 0.5) * np.sin(angle)
    return _blend(start, end, (t - t.min()) / (t.max() - t.min()))


def radial_gradient(
    inner: Color, outer: Color, centre: tuple[float, float], size: Size
) -> Image.Image:
    """A radial gradient from ``inner`` at ``centre`` (fractions of width/height) outwards."""
    x, y = _unit_grid(size)
    radius = np.hypot(x - centre[0], y - centre[1])
    return _blend(inner, outer, radius / radius.max())


def two_tone(first: Color, second: Color, *, vertical: bool, size: Size) -> Image.Image:
    """Two flat halves, split by a vertical (left/right) or horizontal (top/bottom) line."""
    width, height = size
    pixels = np.empty((height, width, 3), dtype=np.uint8)
    pixels[:] = first
    if vertical:
        pixels[:, width // 2 :] = second
    else:
        pixels[height // 2 :, :] = second
    return Image.fromarray(pixels)


def near_flat_noise(level: int, amplitude: float, *, seed: int, size: Size) -> Image.Image:
    """Grey ``level`` plus seeded Gaussian noise of standard deviation ``amplitude``."""
    width, height = size
    rng = np.random.default_rng(seed)
    noise = rng.normal(level, amplitude, size=(height, width, 1))
    return _to_image(np.repeat(noise, 3, axis=2))


def _unit_grid(size: Size) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    width, height = size
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    return x / max(width - 1, 1), y / max(height - 1, 1)


def _blend(start: Color, end: Color, t: npt.NDArray[np.float64]) -> Image.Image:
    first = np.asarray(start, dtype=np.float64)
    second = np.asarray(end, dtype=np.float64)
    return _to_image(first + (second - first) * t[..., np.newaxis])


def _to_image(pixels: npt.NDArray[np.float64]) -> Image.Image:
    return Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8))
