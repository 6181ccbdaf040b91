"""Victim-side crop hashes: a few extra PDQ hashes of crops of each still picture.

PDQ of a re-upload cropped by 5 % or more is beyond the threshold of the full picture's, and
the upload side cannot recover the part cut away. So the victim's device also submits the PDQ
hashes of a few crops of the picture (``CROPS``); an upload cropped close to one of them then
matches. A crop box catches centred crops within about 2.5 % of its own cut but off-centre
crops only within about 1 %: the boxes cover centred crops of 3-20 % and one side cut by 5 %,
not arbitrary off-centre crops (measured in the README's "Matching quality"). Video frames
get none (a video already sends many frames).

The boxes are integer arithmetic only (``crop_boxes``), so the web page (``crops.js``)
computes the same pixels and, through its bit-exact PDQ, the same codes.

Rules, the same in the page:
* a picture whose shorter side is below ``MIN_CROP_SIDE`` pixels gets no crop hashes (a crop
  of a thumbnail carries little detail, and its hash little information);
* a crop whose PDQ fails the low-information rule (quality below ``MIN_CROP_QUALITY``, the
  server's ``pdq_min_quality``, or set bits outside 120-128) is left out. The server also
  refuses a code close to a synthetic flat or gradient picture's; ``victim_crop_hashes``
  leaves those out too, the page drops one when the server refuses it.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

import numpy as np
import pdqhash
from PIL import Image

from hashsvc.errors import LowInformationHash
from hashsvc.signals.base import pack_bits
from hashsvc.signals.sides import SignalHash

PDQ = "pdq"
CROP_PREFIX = "crop-"
MIN_CROP_SIDE = 100
MIN_CROP_QUALITY = 50  # Settings.pdq_min_quality's default, the server's quality gate
ANCHORS = frozenset({"c", "l", "r", "t", "b", "tl", "tr", "bl", "br"})


@dataclass(frozen=True)
class Crop:
    """A crop keeping ``keep`` per cent of the width and of the height, placed at ``anchor``:
    ``"c"`` centred, or against the left/right/top/bottom side (``"l"``, ``"r"``, ``"t"``,
    ``"b"``, centred along it) or a corner (``"tl"``, ``"tr"``, ``"bl"``, ``"br"``)."""

    keep: int
    anchor: str

    @property
    def variant(self) -> str:
        return f"{CROP_PREFIX}{self.anchor}{self.keep}"


# Measured on the 333-photo corpus (README, "Matching quality"): PDQ of a centred crop matches
# centred re-upload crops within about +-2.5 % of its own cut, so a ladder of 5, 10, 15 and 20 %
# covers centred crops of 3-20 %; an off-centre crop must sit within about 1 % of a box, so
# the two left do what few boxes can: a side cut by 5 % (left or right; 2 more boxes on
# top and bottom added less).
CROPS: tuple[Crop, ...] = (
    Crop(95, "c"),
    Crop(90, "c"),
    Crop(85, "c"),
    Crop(80, "c"),
    Crop(95, "l"),
    Crop(95, "r"),
)

Box = tuple[int, int, int, int]  # left, top, right, bottom (right and bottom exclusive)


def crop_box(width: int, height: int, crop: Crop) -> Box:
    """The box of ``crop`` in a ``width`` x ``height`` picture (integer arithmetic only)."""
    if crop.anchor not in ANCHORS:
        raise ValueError(f"unknown crop anchor {crop.anchor!r}")
    cw = width * crop.keep // 100
    ch = height * crop.keep // 100
    left = 0 if "l" in crop.anchor else width - cw if "r" in crop.anchor else (width - cw) // 2
    top = 0 if "t" in crop.anchor else height - ch if "b" in crop.anchor else (height - ch) // 2
    return left, top, left + cw, top + ch


def crop_boxes(width: int, height: int) -> list[tuple[str, Box]]:
    """(variant, box) of every crop hashed for a picture of this size; none for a picture
    whose shorter side is below ``MIN_CROP_SIDE``."""
    if min(width, height) < MIN_CROP_SIDE:
        return []
    return [(crop.variant, crop_box(width, height, crop)) for crop in CROPS]


def victim_crop_hashes(image: Image.Image) -> list[SignalHash]:
    """The extra PDQ hashes of the crops of a still picture (``variant="crop-..."``), those
    that pass the low-information rule, in ``CROPS`` order."""
    from hashsvc.signals import SIGNALS  # the registry imports sides, which imports nothing here

    signal = SIGNALS[PDQ]
    pixels = np.asarray(image if image.mode == "RGB" else image.convert("RGB"))
    out = []
    for variant, (left, top, right, bottom) in crop_boxes(image.width, image.height):
        bits, quality = pdqhash.compute(np.ascontiguousarray(pixels[top:bottom, left:right]))
        code = pack_bits(bits)
        try:
            signal.check_information(code, int(quality), min_quality=MIN_CROP_QUALITY)
        except LowInformationHash:
            continue
        out.append(SignalHash(PDQ, code, int(quality), variant))
    return out


class _Variant(Protocol):
    @property
    def variant(self) -> str: ...


H = TypeVar("H", bound=_Variant)


def is_crop(item: _Variant) -> bool:
    """Whether a hash is one of a picture's crop hashes."""
    return item.variant.startswith(CROP_PREFIX)


def crops_last(pictures: Sequence[Sequence[H]], room: int) -> list[H]:
    """The hashes of several pictures in the order the page sends them, within ``room``:
    every full-picture hash, then crop hashes (every picture's first crop, then every
    picture's second...) while there is room. Full-picture hashes are never left out."""
    full = [h for picture in pictures for h in picture if not is_crop(h)]
    crops = [[h for h in picture if is_crop(h)] for picture in pictures]
    ranked = [h for rank in itertools.zip_longest(*crops) for h in rank if h is not None]
    return full + ranked[: max(0, room - len(full))]
