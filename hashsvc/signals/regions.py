"""Where the picture is inside an upload: plain borders, letterboxing and padding trimmed off,
a caption bar cut off, and the photograph inside a screenshot (``hashsvc.signals.screens``).

All work on small greyscale copies and return boxes in the upload's own pixel coordinates, so
their cost does not grow with the upload's size. They only add hashes on the upload side: a
wrong region costs one more index query, never a missed match.
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
# A caption bar: lines with at least CAPTION_SHARE of their pixels in the bar's colour (text
# on it), CAPTION_MIN to CAPTION_MAX of the picture's height, ending in a sharp edge.
CAPTION_SHARE = 0.3
CAPTION_MIN = 0.03
CAPTION_MAX = 0.4
CAPTION_EDGE = 0.5
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


def _caption_rows(lines: Grey) -> int:
    """Number of leading lines forming a caption bar: text on a plain bar (every line at least
    CAPTION_SHARE in the edge line's colour, some not plain), ending in a sharp edge (a plain
    line, then one at most CAPTION_EDGE in that colour: a photograph's own plain background
    fades in instead), CAPTION_MIN to CAPTION_MAX of the lines; 0 when there is none."""
    colour = float(np.median(lines[0]))
    share = (np.abs(lines - colour) <= TOLERANCE).mean(axis=1)
    limit = min(len(share) - 1, int(CAPTION_MAX * len(share)))
    weak = np.flatnonzero(share[: limit + 1] < CAPTION_SHARE)
    end = int(weak[0]) if weak.size else limit  # the bar cannot reach past here
    text = np.cumsum(share < PLAIN_SHARE)
    for count in range(max(1, int(CAPTION_MIN * len(share))), end + 1):
        edge = share[count - 1] >= PLAIN_SHARE and share[count] <= CAPTION_EDGE
        if edge and text[count - 1] > 0:
            return count
    return 0


def caption_box(image: Image.Image, source: GreyCopy | None = None) -> Box | None:
    """The picture without a caption bar (text on a plain bar) above and/or below it, or
    ``None`` when there is none. ``source``: a grey copy of the upload (``COARSE_SIDE``)."""
    copy = source if source is not None else grey_copy(image, COARSE_SIDE)
    grey = copy.pixels
    top, bottom = _caption_rows(grey), _caption_rows(grey[::-1])
    if top == 0 and bottom == 0:
        return None
    height, width = grey.shape
    return _accept((0, top, width, height - bottom), grey.shape, copy.scale, image.size)


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
    picture (``"trim"``), the picture without a caption bar (``"caption"``) and the screenshot
    region (``"screen"``), each when it differs from the full picture and the others."""
    coarse = grey_copy(image, COARSE_SIDE)
    boxes: list[tuple[str, Box]] = []
    found = (
        ("trim", trim_box(image, coarse)),
        ("caption", caption_box(image, coarse)),
        ("screen", screen_box(image, coarse)),
    )
    for name, box in found:
        if box is not None and all(_differs(box, other, image.size) for _, other in boxes):
            boxes.append((name, box))
    return boxes


def _differs(first: Box, second: Box, size: tuple[int, int]) -> bool:
    """Whether two boxes differ by more than 2 % of the picture on some edge."""
    limit = 0.02 * max(size)
    return any(abs(a - b) > limit for a, b in zip(first, second, strict=True))
