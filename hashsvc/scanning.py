"""The one scan pipeline: hashes (given, or computed from media) -> matches -> match records on
the victims' cases -> hits for the platform. Platforms get opaque references, never case ids."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from hashsvc.matching import Matcher
from hashsvc.matching.matcher import PRIMARY
from hashsvc.models import HashEntry, Match, MatchRecord, Platform
from hashsvc.security import new_reference
from hashsvc.store import Store


@dataclass(frozen=True)
class ScanHit:
    """What a platform learns about one match: a reference, the signal and its distance."""

    match_ref: str
    signal: str
    distance: int


def _strongest(matches: list[Match]) -> Match:
    return min(matches, key=lambda m: (m.signal != PRIMARY, m.distance))


async def scan(
    entries: Sequence[HashEntry], platform: Platform, matcher: Matcher, store: Store
) -> list[ScanHit]:
    """Match the hashes and record one match per case on that case's history."""
    per_case: dict[str, list[Match]] = defaultdict(list)
    for match in await matcher.match(entries):
        per_case[match.case_id].append(match)
    hits: list[ScanHit] = []
    for case_id, matches in per_case.items():
        ref, best = new_reference(), _strongest(matches)
        record = MatchRecord(ref, platform.name, time.time(), best.signal, best.distance)
        if await store.matches.record(case_id, platform.platform_id, record):
            hits.extend(ScanHit(ref, m.signal, m.distance) for m in matches)
    return sorted(hits, key=lambda h: (h.distance, h.match_ref))
