"""The product's decision for one victim picture against one upload, with default thresholds.

Two tiers, the rule the index-backed ``Matcher`` applies per case (PDQ is the primary signal):
- ``"match"``: some victim PDQ hash is within ``PDQ_THRESHOLD`` of some upload PDQ hash (any
  upload view: full, dihedral variant, trimmed, screenshot region); flags for removal review;
- ``"possible"``: no PDQ hash that close, but pHash is within ``PHASH_THRESHOLD`` and PDQ
  corroborates within ``PDQ_CORROBORATION`` (a second, independent signal agrees; pHash alone
  would give about two false candidates per upload against a million hashes).
A side whose PDQ quality is below ``MIN_PDQ_QUALITY`` (a flat or nearly flat picture) matches
nothing. Thresholds: see the README's "Matching quality" section for the measured curves.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hashsvc.signals.sides import SignalHash

PDQ = "pdq"
PHASH = "phash"
PDQ_THRESHOLD = 31
PHASH_THRESHOLD = 10
PDQ_CORROBORATION = 63
MIN_PDQ_QUALITY = 50


@dataclass(frozen=True)
class MatchDecision:
    """A decision that the upload shows the victim's picture: ``tier`` is ``"match"`` or
    ``"possible"``; ``distances`` the best distance per signal over all hash pairs;
    ``variant`` the upload view that gave the best PDQ distance."""

    tier: str
    distances: dict[str, int]
    variant: str


def _distance(first: bytes, second: bytes) -> int:
    a = np.frombuffer(first, dtype=np.uint8)
    b = np.frombuffer(second, dtype=np.uint8)
    return int(np.bitwise_count(a ^ b).sum())


def _flat(hashes: Sequence[SignalHash]) -> bool:
    return any(
        h.signal == PDQ and h.quality is not None and h.quality < MIN_PDQ_QUALITY
        for h in hashes
        if h.variant == "full"
    )


def decide(victim: Sequence[SignalHash], upload: Sequence[SignalHash]) -> MatchDecision | None:
    """Whether ``upload`` (``upload_hashes`` of an upload) shows the picture ``victim``
    (``victim_hashes`` of it) stands for, and in which tier; ``None`` when it does not."""
    if _flat(victim) or _flat(upload):
        return None
    best: dict[str, tuple[int, str]] = {}
    for v in victim:
        for u in upload:
            if u.signal != v.signal:
                continue
            distance = _distance(v.code, u.code)
            if v.signal not in best or distance < best[v.signal][0]:
                best[v.signal] = (distance, u.variant)
    distances = {signal: d for signal, (d, _) in best.items()}
    pdq = best.get(PDQ)
    if pdq is not None and pdq[0] <= PDQ_THRESHOLD:
        return MatchDecision("match", distances, pdq[1])
    phash = best.get(PHASH)
    if phash is None or phash[0] > PHASH_THRESHOLD:
        return None
    if pdq is not None and pdq[0] > PDQ_CORROBORATION:
        return None
    return MatchDecision("possible", distances, phash[1] if pdq is None else pdq[1])
