"""The one registry of hash algorithms (signal types): ``SIGNALS`` by name.

Low-information rule, applied by ``SignalType.check_information`` to submitted codes
(quality optional). Bounds measured on the 7 fixture photos, their 12 variants and two
more camera photos (117 images) against synthetic flat/gradient images:

* quality below ``min_quality`` (PDQ; photos 91-100, flats 0, linear gradients 0-44).
* set bits outside the signal's range. Both hashes set a bit when a coefficient is
  strictly above the median, so no code sets more than half its bits (129 PDQ or 33
  pHash bits cannot come from either hasher), and every photo set exactly 128/256 (PDQ)
  and 32/64 (pHash) bits (re-measured on 168 images: the 7 photos x 8 variants x 3 crops).
  Flat images set 0-108 PDQ bits at most sizes (exactly 128 at some, e.g. 256x256) and
  0-1 pHash bits; gradients and two-tone halves 1-21 pHash bits. Bounds: PDQ 120-128,
  pHash 28-32 (an exactly mirror-symmetric image sets 14-16 pHash bits and is refused as
  well).
* within the default match threshold of a degenerate code: the hash of one of 326
  synthetic low-information images (``hashsvc.signals.lowinfo``; 254 distinct PDQ and
  216 distinct pHash codes), computed on first use (about 0.5 s per signal) and cached.
  Photos were at least 94 (PDQ) and 16 (pHash) bits from every degenerate code.

Known gap: PDQ codes of flat images and linear gradients are float rounding noise that
varies with colour and size, so from the code alone only some are recognised; with the
quality score every one is.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType

from PIL import Image

from hashsvc.errors import UnknownSignal
from hashsvc.signals.base import HashResult, SignalType
from hashsvc.signals.lowinfo import low_information_images
from hashsvc.signals.pdq import PdqSignal
from hashsvc.signals.phash import PHashSignal
from hashsvc.signals.sides import SignalHash, upload_hashes, victim_hashes

__all__ = [
    "SIGNALS",
    "HashResult",
    "SignalHash",
    "SignalType",
    "build_registry",
    "get_signal",
    "hash_all",
    "upload_hashes",
    "victim_hashes",
]


def build_registry(signals: Iterable[SignalType]) -> Mapping[str, SignalType]:
    """A read-only name -> signal mapping; raises ``ValueError`` on a duplicate name."""
    registry: dict[str, SignalType] = {}
    for signal in signals:
        if signal.name in registry:
            raise ValueError(f"duplicate signal name {signal.name!r}")
        registry[signal.name] = signal
    return MappingProxyType(registry)


SIGNALS: Mapping[str, SignalType] = build_registry(
    (PdqSignal(low_information_images), PHashSignal(low_information_images))
)


def get_signal(name: str) -> SignalType:
    """The signal called ``name``; raises ``UnknownSignal`` listing the known names."""
    try:
        return SIGNALS[name]
    except KeyError:
        known = ", ".join(sorted(SIGNALS))
        raise UnknownSignal(f"unknown signal {name!r}; known signals: {known}") from None


def hash_all(image: Image.Image) -> dict[str, HashResult]:
    """Every signal's hash of one decoded image."""
    return {name: signal.hash_image(image) for name, signal in SIGNALS.items()}
