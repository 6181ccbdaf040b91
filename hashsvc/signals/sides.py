"""The two library entry points, one per side of a match.

* ``victim_hashes(image)``: what a victim's device submits for one picture: one hash per
  registered signal and, for a still picture, the PDQ hashes of a few crops of it
  (``hashsvc.signals.crops``), exactly what the web page computes in JavaScript (bit for bit).
* ``upload_hashes(image)``: what a scan computes for an upload. Apart from the victim's crop
  hashes (a part cut away cannot be recovered from the upload), the upload side carries the
  robustness:
  - PDQ's 8 dihedral variants (rotations by 90/180/270 and mirrors, one pass of
    ``pdqhash.compute_dihedral``), so flipped and turned re-uploads match;
  - PDQ and pHash of the picture with plain borders, letterboxing and padding trimmed, of
    the picture without a caption bar, and of the photograph inside a screenshot (rounded
    corners filled in) (``hashsvc.signals.regions``, ``hashsvc.signals.screens``), when
    those differ from the full picture.
  Every hash is one more index query of a batch; hashes of a flat region (PDQ quality below
  ``MIN_REGION_QUALITY``) are left out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pdqhash
from PIL import Image

from hashsvc.signals.base import pack_bits
from hashsvc.signals.regions import content_boxes
from hashsvc.signals.screens import fill_corners

PDQ = "pdq"
PHASH = "phash"
# Below PDQ's quality gate (Settings.min_pdq_quality): a region that flat is left out.
MIN_REGION_QUALITY = 50
# Region views are hashed at most this large (longest side).
REGION_SIDE = 512


@dataclass(frozen=True)
class SignalHash:
    """One hash of one picture: the signal's name, the code bytes (``SIGNALS[signal]``'s
    canonical form), PDQ's quality score (``None`` for signals without one) and which view
    of the upload it hashes (``"full"``, ``"dihedral-k"``, ``"trim"``, ``"caption"``,
    ``"screen"``)."""

    signal: str
    code: bytes
    quality: int | None = None
    variant: str = "full"


def victim_hashes(image: Image.Image, *, crops: bool = True) -> list[SignalHash]:
    """What a victim's device submits for one picture: every registered signal's hash of the
    full picture, then (``crops``: a still picture, not a video frame) the PDQ hashes of its
    crops, ``victim_crop_hashes`` (the web page computes the same codes in JavaScript)."""
    from hashsvc.signals import hash_all  # the registry imports this module
    from hashsvc.signals.crops import victim_crop_hashes  # it imports this module

    full = [SignalHash(name, r.code, r.quality) for name, r in hash_all(image).items()]
    if not crops:
        return full
    return full + victim_crop_hashes(image)


def _rgb(image: Image.Image) -> Image.Image:
    return image if image.mode == "RGB" else image.convert("RGB")


def _dihedral_pdq(image: Image.Image) -> list[SignalHash]:
    codes, quality = pdqhash.compute_dihedral(np.asarray(_rgb(image)))
    return [
        SignalHash(PDQ, pack_bits(bits), int(quality), "full" if k == 0 else f"dihedral-{k}")
        for k, bits in enumerate(codes)
    ]


def _reduced(region: Image.Image) -> Image.Image:
    """A region with longest side at most REGION_SIDE (box filter): both hashes shrink the
    picture to 64x64 (PDQ) or 32x32 (pHash) first, so this hardly moves them but saves most of
    their cost on a large region."""
    width, height = region.size
    scale = REGION_SIDE / max(width, height)
    if scale >= 1.0:
        return region
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return region.resize(size, Image.Resampling.BOX)


def upload_hashes(image: Image.Image) -> list[SignalHash]:
    """What a scan computes for one upload (see the module docstring); the first PDQ and
    the first pHash are the plain hashes of the full picture, as ``victim_hashes`` has them."""
    from hashsvc.signals import SIGNALS

    phash = SIGNALS[PHASH]
    pdq = SIGNALS[PDQ]
    out = _dihedral_pdq(image)
    out.append(SignalHash(PHASH, phash.hash_image(image).code))
    for variant, box in content_boxes(image):
        region = _reduced(image.crop(box))
        if variant == "screen":
            region = fill_corners(region)
        result = pdq.hash_image(region)
        if result.quality is None or result.quality < MIN_REGION_QUALITY:
            continue
        out.append(SignalHash(PDQ, result.code, result.quality, variant))
        out.append(SignalHash(PHASH, phash.hash_image(region).code, None, variant))
    return out
