"""Where the photograph is inside a screenshot (phone app, chat, web page): UI chrome is flat
colour with text and icons on it, a photograph is texture, pasted as an axis-aligned rectangle.

All on greyscale copies (longest side ``COARSE_SIDE`` and ``FINE_SIDE``), so the cost does not
grow with the upload's size:

1. *Background levels*: the grey levels that, give or take a little, fill at least
   ``BACKGROUND_SHARE`` of the picture with exactly flat blocks: the UI's background colours.
2. *Coarse*: 8x8-pixel blocks are scored (texture away from the background levels:
   photograph, +1; smooth but not exactly flat: a smooth part of a photograph, ``SMOOTH_SCORE``;
   flat or background: ``FLAT_SCORE``; texture on the background: text or icons,
   ``TEXT_SCORE``), and the rectangle of blocks with the largest total score is taken.
3. *Fine*: each edge of that rectangle is moved, on the finer copy, to where lines made mostly
   of background pixels begin (outwards while the next line is not UI, inwards past UI lines):
   PDQ needs the photo's edges within about 1 % to give a close hash.
4. *Chrome check*: the blocks around the box must look like UI (flat or text, hardly any
   photograph), else the picture is no screenshot (a photo's own sky left out of the box).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from PIL import Image

Box = tuple[int, int, int, int]  # left, upper, right, lower (PIL crop order)
Grey = npt.NDArray[np.float32]
Scores = npt.NDArray[np.float64]

COARSE_SIDE = 512
FINE_SIDE = 1024
BLOCK = 8
# Block classes: mean gradient above BUSY_GRADIENT is texture; texture with at least
# TEXT_SHARE of its pixels at a background level (``background_table``) is strokes on the
# UI's background (text, icons); a block with FLAT_SHARE of its pixels there, or whose levels
# span at most FLAT_RANGE, is flat UI.
BUSY_GRADIENT = 3.0
BACKGROUND_SHARE = 0.01
BACKGROUND_LEVELS = 2
TEXT_SHARE = 0.25
FLAT_SHARE = 0.9
FLAT_RANGE = 1.0
PHOTO_SCORE = 1.0
SMOOTH_SCORE = 0.2
FLAT_SCORE = -0.5
TEXT_SCORE = -1.0
# A coarse rectangle of at least WHOLE_SHARE of the blocks is the whole upload: no screenshot.
WHOLE_SHARE = 0.95
# Around the photograph of a screenshot: at least MIN_TEXT_SHARE of the blocks text or icons,
# at most MAX_PHOTO_SHARE photographic, at least MIN_UI_SHARE text or flat UI (a photograph's
# own smooth areas are not flat).
MIN_UI_SHARE = 0.85
MIN_TEXT_SHARE = 0.01
MAX_PHOTO_SHARE = 0.06
# Rounded corners: looked for in squares of CORNER_SHARE of the photo's shorter side (at most
# CORNER_MAX pixels); the corner's colour give or take CORNER_LEVELS.
CORNER_SHARE = 0.08
CORNER_MAX = 48
CORNER_LEVELS = 12
# Padding: lines with PLAIN_SHARE of their pixels within PLAIN_LEVELS of the edge's colour are
# cut off the box's edges when at most MAX_INSET of its width or height.
PLAIN_SHARE = 0.97
PLAIN_LEVELS = 10.0
MAX_INSET = 0.03
# Fine pass: a UI line has at least UI_LINE of its pixels at background levels.
UI_LINE = 0.6


@dataclass(frozen=True)
class GreyCopy:
    """A greyscale copy of an upload and its scale (copy pixels per upload pixel)."""

    pixels: Grey
    scale: float


def grey_copy(image: Image.Image, side: int, source: GreyCopy | None = None) -> GreyCopy:
    """A greyscale copy with longest side at most ``side``, made from ``source`` (an earlier,
    larger copy of the same upload) when given: one pass over the upload's pixels in all."""
    width, height = image.size
    scale = min(1.0, side / max(width, height))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    if source is None:
        grey = image.convert("L")
    else:
        grey = Image.fromarray(np.clip(np.rint(source.pixels), 0, 255).astype(np.uint8))
    if size != grey.size:
        grey = grey.resize(size, Image.Resampling.BILINEAR)
    return GreyCopy(np.asarray(grey, dtype=np.float32), scale)


def background_table(grey: Grey, flat: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
    """Per grey level 0-255: whether it is one of the UI's background levels: those held, give
    or take BACKGROUND_LEVELS, by at least BACKGROUND_SHARE of all pixels inside exactly flat
    blocks (``flat``). A photograph's own large areas (sky, shadow) drift: seldom exactly flat."""
    rows, cols = flat.shape
    inside = _levels(grey[: rows * BLOCK, : cols * BLOCK])
    in_flat = np.repeat(np.repeat(flat, BLOCK, axis=0), BLOCK, axis=1)
    counts = np.bincount(inside[in_flat], minlength=256).astype(np.float64)
    kernel = np.ones(2 * BACKGROUND_LEVELS + 1)
    dominant = np.convolve(counts, kernel, mode="same") >= BACKGROUND_SHARE * grey.size
    table: npt.NDArray[np.bool_] = np.convolve(dominant, kernel, mode="same") > 0
    return table


def _levels(grey: Grey) -> npt.NDArray[np.intp]:
    return np.clip(np.rint(grey), 0, 255).astype(np.intp)


def block_scores(grey: Grey) -> tuple[Scores, npt.NDArray[np.bool_]]:
    """Per 4x4 block: how much it looks like part of a photograph (see the module docstring);
    and the background table (``background_table``)."""
    rows, cols = (grey.shape[0] - 1) // BLOCK, (grey.shape[1] - 1) // BLOCK
    if rows <= 0 or cols <= 0:
        return np.zeros((max(rows, 0), max(cols, 0))), np.zeros(256, dtype=bool)
    dx = np.abs(np.diff(grey, axis=1))[:-1, :]
    dy = np.abs(np.diff(grey, axis=0))[:, :-1]
    gradient = (dx + dy)[: rows * BLOCK, : cols * BLOCK].reshape(rows, BLOCK, cols, BLOCK)
    inside = grey[: rows * BLOCK, : cols * BLOCK]
    blocks = inside.reshape(rows, BLOCK, cols, BLOCK)
    flat = blocks.max(axis=(1, 3)) - blocks.min(axis=(1, 3)) <= FLAT_RANGE
    table = background_table(grey, flat)
    share = table[_levels(inside)].reshape(rows, BLOCK, cols, BLOCK).mean(axis=(1, 3))
    busy = gradient.mean(axis=(1, 3)) > BUSY_GRADIENT
    scores = np.full((rows, cols), SMOOTH_SCORE)
    scores[flat | (share >= FLAT_SHARE)] = FLAT_SCORE
    scores[busy] = np.where(share[busy] >= TEXT_SHARE, TEXT_SCORE, PHOTO_SCORE)
    return scores, table


def max_sum_rectangle(scores: Scores) -> Box | None:
    """The axis-aligned rectangle of cells with the largest total score (``None`` when no
    cell is positive), as (left, upper, right, lower) in cells. O(rows^2 x cols), vectorised
    over the lower row and the right column."""
    if scores.shape[0] > scores.shape[1]:  # loop over the shorter side
        found = max_sum_rectangle(scores.T)
        return None if found is None else (found[1], found[0], found[3], found[2])
    rows = scores.shape[0]
    best: tuple[float, Box] | None = None
    for top in range(rows):
        column_sums = np.cumsum(scores[top:], axis=0)  # [b, c]: rows top..top+b
        prefix = np.concatenate([np.zeros((rows - top, 1)), np.cumsum(column_sums, axis=1)], 1)
        lowest = np.minimum.accumulate(prefix, axis=1)
        gains = prefix[:, 1:] - lowest[:, :-1]  # [b, j]: best sum ending at column j
        b, j = np.unravel_index(int(np.argmax(gains)), gains.shape)
        gain = float(gains[b, j])
        if gain > 0 and (best is None or gain > best[0]):
            left = int(np.argmin(prefix[b, : j + 1]))
            best = (gain, (left, top, int(j) + 1, top + int(b) + 1))
    return None if best is None else best[1]


def _settle(ui: npt.NDArray[np.bool_], start: int, stop: int) -> int:
    """Where the photograph begins along lines ``ui`` (whether each line is UI), walking from
    ``start`` towards index 0 (outwards): inwards past UI lines (never beyond ``stop``),
    else outwards while the next line out is not UI."""
    position = min(max(start, 0), len(ui))
    if position < len(ui) and ui[position]:
        photo = np.flatnonzero(~ui[position:stop])
        return position + int(photo[0]) if photo.size else position
    outside = np.flatnonzero(ui[:position])
    return int(outside[-1]) + 1 if outside.size else 0


def _refine(background: npt.NDArray[np.bool_], box: Box) -> Box:
    """Each edge of ``box`` moved to where UI lines (mostly background pixels) begin."""
    left, upper, right, lower = box
    height, width = background.shape
    for _ in range(2):  # the second pass measures lines over the refined span
        if right - left < 2 or lower - upper < 2:
            return box
        rows = background[:, left:right].mean(axis=1) >= UI_LINE
        cols = background[upper:lower, :].mean(axis=0) >= UI_LINE
        upper, lower = (
            _settle(rows, upper, lower),
            height - _settle(rows[::-1], height - lower, height - upper),
        )
        left, right = (
            _settle(cols, left, right),
            width - _settle(cols[::-1], width - right, width - left),
        )
    return left, upper, right, lower


def _plain_lines(lines: Grey) -> int:
    """How many leading lines (rows of ``lines``) are plain in the first one's colour, over
    their middle (a rounded bubble's corners are not)."""
    cut = int(0.1 * lines.shape[1])
    lines = lines[:, cut : lines.shape[1] - cut]
    colour = np.median(lines[0])
    plain = (np.abs(lines - colour) <= PLAIN_LEVELS).mean(axis=1) >= PLAIN_SHARE
    return int(np.argmin(plain)) if not plain.all() else len(plain)


def _inset(grey: Grey, box: Box) -> Box:
    """``box`` without a thin plain strip along an edge (a chat bubble's padding around the
    photo): cut only when at most MAX_INSET of that side, as a longer one is more likely the
    photograph's own plain background."""
    left, upper, right, lower = box
    inside = grey[upper:lower, left:right]
    if inside.shape[0] < 8 or inside.shape[1] < 8:
        return box

    def cut(lines: Grey) -> int:
        count = _plain_lines(lines)
        return count if count <= MAX_INSET * lines.shape[0] else 0

    return (
        left + cut(inside.T),
        upper + cut(inside),
        right - cut(inside.T[::-1]),
        lower - cut(inside[::-1]),
    )


def photo_box(image: Image.Image, coarse: GreyCopy | None = None) -> Box | None:
    """The photograph's rectangle inside a screenshot, in the upload's pixels; ``None`` when
    no block looks photographic or the photograph is about the whole upload. ``coarse``: the
    upload's ``grey_copy`` at ``COARSE_SIDE``, if the caller has it; the finer copy is made
    only for a candidate rectangle."""
    if coarse is None:
        coarse = grey_copy(image, COARSE_SIDE)
    scores, table = block_scores(coarse.pixels)
    found = max_sum_rectangle(scores)
    if found is None or _area(found) >= WHOLE_SHARE * scores.size:
        return None
    fine = grey_copy(image, FINE_SIDE) if coarse.scale < 1.0 else coarse
    ratio = fine.scale / coarse.scale
    left, upper, right, lower = (round(v * BLOCK * ratio) for v in found)
    box = _inset(fine.pixels, _refine(table[_levels(fine.pixels)], (left, upper, right, lower)))
    cells = BLOCK * ratio  # fine pixels per block; one block of slack around the box
    around = (
        max(0, int(box[0] / cells) - 1),
        max(0, int(box[1] / cells) - 1),
        int(np.ceil(box[2] / cells)) + 1,
        int(np.ceil(box[3] / cells)) + 1,
    )
    if not _chrome_around(scores, around):
        return None
    width, height = image.size
    return (
        max(0, round(box[0] / fine.scale)),
        max(0, round(box[1] / fine.scale)),
        min(width, round(box[2] / fine.scale)),
        min(height, round(box[3] / fine.scale)),
    )


def _area(box: Box) -> int:
    return (box[2] - box[0]) * (box[3] - box[1])


def _chrome_around(scores: Scores, box: Box) -> bool:
    """Whether the blocks around ``box`` (in blocks) look like UI chrome (see MIN_UI_SHARE):
    a photograph's own sky or shadow left out of the box is seldom flat and textless."""
    outside = np.ones(scores.shape, dtype=bool)
    outside[box[1] : box[3], box[0] : box[2]] = False
    count = int(outside.sum())
    if count < (1 - WHOLE_SHARE) * scores.size:
        return False
    around = scores[outside]
    text = float((around == TEXT_SCORE).mean())
    photo = float((around == PHOTO_SCORE).mean())
    flat = float((around == FLAT_SCORE).mean())
    return text >= MIN_TEXT_SHARE and photo <= MAX_PHOTO_SHARE and text + flat >= MIN_UI_SHARE


def fill_corners(region: Image.Image) -> Image.Image:
    """The photograph of a screenshot with rounded-off corners filled in: in each corner square
    (CORNER_SHARE of the shorter side), pixels of the corner pixel's colour (the bubble or
    page around a rounded photo) take the mean colour of the others. Chat apps round photos'
    corners; the background showing there moves PDQ by 25-45 bits on plain-background photos."""
    pixels = np.asarray(region.convert("RGB"), dtype=np.float32).copy()
    height, width = pixels.shape[:2]
    side = min(CORNER_MAX, round(CORNER_SHARE * min(width, height)))
    if side < 2:
        return region
    for rows in (slice(0, side), slice(height - side, height)):
        for cols in (slice(0, side), slice(width - side, width)):
            square = pixels[rows, cols]
            corner = square[0 if rows.start == 0 else -1, 0 if cols.start == 0 else -1]
            same = (np.abs(square - corner) <= CORNER_LEVELS).all(axis=2)
            if same.all() or not same.any():
                continue
            square[same] = square[~same].mean(axis=0)
    return Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8))
