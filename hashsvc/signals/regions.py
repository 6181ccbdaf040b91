"""Where the picture is inside an upload: plain borders, letterboxing and padding trimmed off,
and the photograph inside a screenshot (``hashsvc.signals.screens``).

Both work on small greyscale copies and return boxes in the upload's own pixel coordinates,
so their cost does not grow with the upload's size. They only
add hashes on the upload side: a wrong region costs one more index query, never a missed match.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from PIL import Image

from hashsvc.signals.screens import COARSE_SIDE, GreyCopy, grey_copy, photo_box

Box = tuple[int, int, int, int]  # left, upper, right, lower (PIL crop order)

WORK_SIDE = 256
# A border row/column: at least this share of its pixels within TOLERANCE grey levels of the
# edge's colour (a few stray pixels, e.g. JPEG ringing, do not stop the trim).
PLAIN_SHARE = 0.97
TOLERANCE = 10
# A region replaces the full picture only when it is this much smaller (else the full hash
# already stands for it) and not so small that it is likely a detail of the picture.
MAX_AREA_SHARE = 0.92
MIN_AREA_SHARE = 0.12
# A screenshot's photo may be small (a 320 x 240 picture on a 1280 x 800 page is 7.5 %).
MIN_SCREEN_SHARE = 0.03

Grey = npt.NDArray[np.float32]


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


def trim_box(image: Image.Image, source: GreyCopy | None = None) -> Box | None:
    """The picture without plain borders (any colour, each side on its own), or ``None`` when
    nothing worth a second hash is trimmed. ``source``: a larger grey copy of the upload."""
    copy = grey_copy(image, WORK_SIDE, source)
    grey, scale = copy.pixels, copy.scale
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


def screen_box(image: Image.Image, coarse: GreyCopy | None = None) -> Box | None:
    """The photograph inside a screenshot (``hashsvc.signals.screens``), or ``None`` when it
    is (nearly) the whole picture or too small to be the photo."""
    box = photo_box(image, coarse)
    if box is None:
        return None
    left, upper, right, lower = box
    width, height = image.size
    share = (right - left) * (lower - upper) / (width * height)
    return box if MIN_SCREEN_SHARE <= share <= MAX_AREA_SHARE else None


def content_boxes(image: Image.Image) -> list[tuple[str, Box]]:
    """Distinct candidate regions of an upload besides the full picture, named: the trimmed
    picture (``"trim"``) and the screenshot region (``"screen"``), each when it differs from
    the full picture and from the other."""
    coarse = grey_copy(image, COARSE_SIDE)
    boxes: list[tuple[str, Box]] = []
    for name, box in (("trim", trim_box(image, coarse)), ("screen", screen_box(image, coarse))):
        if box is not None and all(_differs(box, other, image.size) for _, other in boxes):
            boxes.append((name, box))
    return boxes


def _differs(first: Box, second: Box, size: tuple[int, int]) -> bool:
    """Whether two boxes differ by more than 2 % of the picture on some edge."""
    limit = 0.02 * max(size)
    return any(abs(a - b) > limit for a, b in zip(first, second, strict=True))
