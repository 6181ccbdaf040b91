"""Where the picture is inside an upload: plain borders, letterboxing and padding trimmed off,
and the photographic region of a screenshot (the largest busy rectangle among flat UI chrome).

Both work on a small greyscale copy (longest side ``WORK_SIDE``) and return boxes in the
upload's own pixel coordinates, so their cost does not grow with the upload's size. They only
add hashes on the upload side: a wrong region costs one more index query, never a missed match.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from PIL import Image

Box = tuple[int, int, int, int]  # left, upper, right, lower (PIL crop order)

WORK_SIDE = 256
SCREEN_SIDE = 384
# A border row/column: at least this share of its pixels within TOLERANCE grey levels of the
# edge's colour (a few stray pixels, e.g. JPEG ringing, do not stop the trim).
PLAIN_SHARE = 0.97
TOLERANCE = 10
# A region replaces the full picture only when it is this much smaller (else the full hash
# already stands for it) and not so small that it is likely a detail of the picture.
MAX_AREA_SHARE = 0.92
MIN_AREA_SHARE = 0.12
# Screenshot search: 4x4-pixel blocks whose mean gradient exceeds BUSY_GRADIENT are "busy";
# holes of up to CLOSE_RADIUS blocks (flat sky, a white product background) are filled first.
BLOCK = 4
BUSY_GRADIENT = 3.0
CLOSE_RADIUS = 2
FLAT_LEVELS = 2.0
MAX_FLAT_SHARE = 0.5

Grey = npt.NDArray[np.float32]
Mask = npt.NDArray[np.bool_]


def _work_copy(image: Image.Image, side: int = WORK_SIDE) -> tuple[Grey, float]:
    """A greyscale copy with longest side at most ``side``, and its scale to the original."""
    width, height = image.size
    scale = min(1.0, side / max(width, height))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    grey = image.convert("L")
    if size != image.size:
        grey = grey.resize(size, Image.Resampling.BILINEAR)
    return np.asarray(grey, dtype=np.float32), scale


def _to_original(box: Box, scale: float, size: tuple[int, int]) -> Box:
    left, upper, right, lower = box
    width, height = size
    return (
        max(0, int(left / scale)),
        max(0, int(upper / scale)),
        min(width, int(np.ceil(right / scale))),
        min(height, int(np.ceil(lower / scale))),
    )


def _plain(lines: Grey, colour: float) -> npt.NDArray[np.bool_]:
    """Per line (row of ``lines``): whether it is plain in ``colour``."""
    share: npt.NDArray[np.float64] = (np.abs(lines - colour) <= TOLERANCE).mean(axis=1)
    return share >= PLAIN_SHARE


def _strip(lines: Grey) -> int:
    """Number of leading plain lines in the edge's colour."""
    colour = float(np.median(lines[0]))
    plain = _plain(lines, colour)
    return int(np.argmin(plain)) if not plain.all() else len(plain)


def trim_box(image: Image.Image) -> Box | None:
    """The picture without plain borders (any colour, each side on its own), or ``None`` when
    nothing worth a second hash is trimmed."""
    grey, scale = _work_copy(image)
    height, width = grey.shape
    top = _strip(grey)
    bottom = height - _strip(grey[::-1])
    left = _strip(grey.T)
    right = width - _strip(grey.T[::-1])
    if bottom - top < 8 or right - left < 8:
        return None  # flat all over
    return _accept((left, top, right, bottom), grey.shape, scale, image.size)


def _accept(box: Box, shape: tuple[int, ...], scale: float, size: tuple[int, int]) -> Box | None:
    left, upper, right, lower = box
    share = (right - left) * (lower - upper) / (shape[0] * shape[1])
    if not MIN_AREA_SHARE <= share <= MAX_AREA_SHARE:
        return None
    return _to_original(box, scale, size)


def _busy_blocks(grey: Grey) -> Mask:
    """Photographic blocks: textured (mean gradient above BUSY_GRADIENT) and not mostly one
    grey level (UI text and icons are strokes on a flat background: most of their pixels sit
    at the background's level)."""
    dx = np.abs(np.diff(grey, axis=1))[:-1, :]
    dy = np.abs(np.diff(grey, axis=0))[:, :-1]
    gradient = dx + dy
    rows, cols = gradient.shape[0] // BLOCK, gradient.shape[1] // BLOCK
    if rows == 0 or cols == 0:  # a picture smaller than one block has no busy block
        return np.zeros((rows, cols), dtype=bool)
    blocks = gradient[: rows * BLOCK, : cols * BLOCK].reshape(rows, BLOCK, cols, BLOCK)
    levels = grey[: rows * BLOCK, : cols * BLOCK].reshape(rows, BLOCK, cols, BLOCK)
    median = np.median(levels, axis=(1, 3), keepdims=True)
    flat_share = (np.abs(levels - median) <= FLAT_LEVELS).mean(axis=(1, 3))
    busy: Mask = (blocks.mean(axis=(1, 3)) > BUSY_GRADIENT) & (flat_share < MAX_FLAT_SHARE)
    return busy


def _dilate(mask: Mask, radius: int) -> Mask:
    out = mask.copy()
    for shift in range(1, radius + 1):
        out[shift:, :] |= mask[:-shift, :]
        out[:-shift, :] |= mask[shift:, :]
    mask = out.copy()
    for shift in range(1, radius + 1):
        out[:, shift:] |= mask[:, :-shift]
        out[:, :-shift] |= mask[:, shift:]
    return out


def _close(mask: Mask, radius: int) -> Mask:
    return ~_dilate(~_dilate(mask, radius), radius)


def largest_rectangle(mask: Mask) -> Box | None:
    """The largest all-True axis-aligned rectangle (histogram-stack method), in mask cells."""
    rows, cols = mask.shape
    heights = np.zeros(cols + 1, dtype=np.int64)
    best: tuple[int, Box] | None = None
    for row in range(rows):
        heights[:cols] = np.where(mask[row], heights[:cols] + 1, 0)
        stack: list[int] = []
        for col in range(cols + 1):
            while stack and heights[stack[-1]] >= heights[col]:
                h = int(heights[stack.pop()])
                start = stack[-1] + 1 if stack else 0
                area = h * (col - start)
                if h and (best is None or area > best[0]):
                    best = (area, (start, row - h + 1, col, row + 1))
            stack.append(col)
    return None if best is None else best[1]


def screen_box(image: Image.Image) -> Box | None:
    """The photographic region of a screenshot: the largest rectangle of busy (textured)
    blocks after filling small flat holes, or ``None`` when it is (nearly) the whole picture
    or too small to be the photo."""
    grey, scale = _work_copy(image, SCREEN_SIDE)
    busy = _busy_blocks(grey)
    if busy.size == 0:
        return None
    found = largest_rectangle(_close(busy, CLOSE_RADIUS))
    if found is None:
        return None
    left, upper, right, lower = found
    box = _grow(grey, (left * BLOCK, upper * BLOCK, right * BLOCK + 1, lower * BLOCK + 1))
    return _accept(box, grey.shape, scale, image.size)


def _ui_line(line: Grey) -> bool:
    """A line of flat UI: nearly all its pixels at one grey level (a photo's smooth areas,
    such as sky or a blurred background, still drift by more than that)."""
    return bool(line.size == 0 or (np.abs(line - np.median(line)) <= FLAT_LEVELS).mean() >= 0.9)


def _grow(grey: Grey, box: Box) -> Box:
    """Extend the busy core to the photo's edges: side by side, while the next line outside
    is not flat UI."""
    left, upper, right, lower = box
    height, width = grey.shape
    changed = True
    while changed:
        changed = False
        if upper > 0 and not _ui_line(grey[upper - 1, left:right]):
            upper, changed = upper - 1, True
        if lower < height and not _ui_line(grey[lower, left:right]):
            lower, changed = lower + 1, True
        if left > 0 and not _ui_line(grey[upper:lower, left - 1]):
            left, changed = left - 1, True
        if right < width and not _ui_line(grey[upper:lower, right]):
            right, changed = right + 1, True
    return left, upper, right, lower


def content_boxes(image: Image.Image) -> list[tuple[str, Box]]:
    """Distinct candidate regions of an upload besides the full picture, named: the trimmed
    picture (``"trim"``) and the screenshot region (``"screen"``), each when it differs from
    the full picture and from the other."""
    boxes: list[tuple[str, Box]] = []
    for name, box in (("trim", trim_box(image)), ("screen", screen_box(image))):
        if box is not None and all(_differs(box, other, image.size) for _, other in boxes):
            boxes.append((name, box))
    return boxes


def _differs(first: Box, second: Box, size: tuple[int, int]) -> bool:
    """Whether two boxes differ by more than 2 % of the picture on some edge."""
    limit = 0.02 * max(size)
    return any(abs(a - b) > limit for a, b in zip(first, second, strict=True))
