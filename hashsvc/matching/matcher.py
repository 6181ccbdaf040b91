"""From query hashes to matches: index lookups per signal, then the fusion rule.

Rule (measured facts: PDQ is the primary signal; pHash alone would give about two false
candidates per upload against a million stored hashes):
- a case matches when one of its PDQ hashes is within the PDQ threshold;
- a pHash hit within its threshold counts only if PDQ corroborates it (the same case has a PDQ
  hash within ``pdq_corroboration_distance`` of the query), or if PDQ cannot speak: the query
  carries no PDQ hash, or the case holds none.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import anyio.to_thread
import numpy as np

from hashsvc.config import Settings
from hashsvc.matching.replica import ReplicaSet
from hashsvc.models import HashEntry, Match
from hashsvc.store.changes import ChangeStream

PRIMARY = "pdq"

CaseSignals = Callable[[str], Awaitable[set[str]]]


@dataclass(frozen=True)
class _Hit:
    hash_id: int
    signal: str
    distance: int


class Matcher:
    """Answers "which cases does this content match" from the replicas."""

    def __init__(
        self,
        replicas: ReplicaSet,
        changes: ChangeStream,
        settings: Settings,
        case_signals: CaseSignals,
    ) -> None:
        self._replicas = replicas
        self._changes = changes
        self._settings = settings
        self._case_signals = case_signals

    def _radius(self, signal: str) -> int:
        threshold = self._settings.threshold_for(signal)
        if signal == PRIMARY:
            return max(threshold, self._settings.pdq_corroboration_distance)
        return threshold

    async def _lookup(self, signal: str, codes: list[bytes]) -> list[_Hit]:
        index = self._replicas.index(signal)
        queries = np.frombuffer(b"".join(codes), dtype=np.uint8).reshape(len(codes), -1)
        _, ids, dists = await anyio.to_thread.run_sync(index.search, queries, self._radius(signal))
        return [_Hit(int(i), signal, int(d)) for i, d in zip(ids, dists, strict=True)]

    async def match(self, entries: Sequence[HashEntry]) -> list[Match]:
        """Best match per (case, signal) for the cases the rule accepts, closest first."""
        await self._replicas.catch_up()
        by_signal: dict[str, list[bytes]] = defaultdict(list)
        for entry in entries:
            by_signal[entry.signal].append(entry.code)
        hits = [h for s, codes in by_signal.items() for h in await self._lookup(s, codes)]
        owners = await self._changes.owners([h.hash_id for h in hits])
        best: dict[str, dict[str, _Hit]] = defaultdict(dict)
        for hit, case_id in zip(hits, owners, strict=True):
            if case_id is None:
                continue
            current = best[case_id].get(hit.signal)
            if current is None or (hit.distance, hit.hash_id) < (current.distance, current.hash_id):
                best[case_id][hit.signal] = hit
        matches: list[Match] = []
        for case_id, per_signal in best.items():
            accepted = await self._accept(
                case_id, per_signal, query_has_primary=PRIMARY in by_signal
            )
            matches.extend(
                Match(case_id, h.hash_id, h.signal, h.distance) for h in accepted.values()
            )
        return sorted(matches, key=lambda m: (m.distance, m.signal, m.case_id))

    async def _accept(
        self, case_id: str, per_signal: dict[str, _Hit], *, query_has_primary: bool
    ) -> dict[str, _Hit]:
        within = {
            s: h for s, h in per_signal.items() if h.distance <= self._settings.threshold_for(s)
        }
        if not within:
            return {}
        if PRIMARY in within or not query_has_primary or PRIMARY in per_signal:
            return within
        # Only secondary signals hit and PDQ did not corroborate: accept if the case has no PDQ.
        if PRIMARY in await self._case_signals(case_id):
            return {}
        return within
