"""PDQ (Meta's 256-bit photo hash) via the ``pdqhash`` reference bindings, with the
ThreatExchange code convention: the 256 bits concatenated MSB-first."""

from __future__ import annotations

import numpy as np
import pdqhash
from PIL import Image

from hashsvc.signals.base import HashResult, SignalType, pack_bits


class PdqSignal(SignalType):
    """PDQ: 256 bits, quality 0-100, matched at Hamming distance <= 31 by default.

    Every photograph measured sets exactly 128 bits, and no PDQ code can set more: a bit
    is set when its coefficient is strictly above the median of the 256, so at most half
    are. Flat images set 0-108 bits (see ``hashsvc.signals`` for the measurements).
    """

    name = "pdq"
    bits = 256
    default_threshold = 31
    min_set_bits = 120
    max_set_bits = 128
    # From the code alone, flat and gradient images are only partly recognisable (see
    # hashsvc.signals): the quality score is what tells them apart reliably.
    requires_quality = True

    def hash_image(self, image: Image.Image) -> HashResult:
        """PDQ of the image's RGB pixels, as ``pdqhash.compute`` computes it."""
        rgb = image if image.mode == "RGB" else image.convert("RGB")
        bits, quality = pdqhash.compute(np.asarray(rgb))
        return HashResult(code=pack_bits(bits), quality=int(quality))
