"""pHash (the DCT perceptual hash of ``imagehash``, 64 bits), coded as ``imagehash``
prints it: the 8x8 bit matrix row by row, MSB-first."""

from __future__ import annotations

import imagehash
from PIL import Image

from hashsvc.signals.base import HashResult, SignalType, pack_bits


class PHashSignal(SignalType):
    """pHash: 64 bits, no quality score, matched at Hamming distance <= 10 by default.

    Every photograph measured sets exactly 32 bits, and no pHash can set more: a bit is
    set when its coefficient is strictly above the median of the 64, so at most half are
    (fewer only when coefficients tie, as in exactly symmetric or flat images). Flat images
    set 0-1 bits, gradients and two-tone images 1-21 (see ``hashsvc.signals``).
    """

    name = "phash"
    bits = 64
    default_threshold = 10
    min_set_bits = 28
    max_set_bits = 32

    def hash_image(self, image: Image.Image) -> HashResult:
        """``imagehash.phash`` with its defaults (hash_size 8); it converts to greyscale."""
        return HashResult(code=pack_bits(imagehash.phash(image).hash.flatten()), quality=None)
