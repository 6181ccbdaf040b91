"""From query hashes to matches: index lookups per signal, then the fusion rule, per frame.

A scan is one or more *frames* (an image is one frame; a video is its sampled frames), each with
one hash per signal. Rule per (case, frame), from measured facts (PDQ is the primary signal;
pHash alone would give about two false candidates per upload against a million hashes):
- the frame matches the case when one of the case's PDQ hashes is within the PDQ threshold;
- a pHash hit within its threshold counts only if PDQ corroborates it (the same case has a PDQ
  hash within ``pdq_corroboration_distance`` of the frame's), or if PDQ cannot speak: the frame
  carries no PDQ hash, or the case holds none.
A case matches the scan when at least ``min_frames`` distinct frames match it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import anyio.to_thread
import numpy as np

from hashsvc.config import Settings
from hashsvc.matching.replica import ReplicaSet
from hashsvc.models import HashEntry
from hashsvc.store.changes import ChangeStream

PRIMARY = "pdq"

CaseSignals = Callable[[str], Awaitable[set[str]]]


@dataclass(frozen=True)
class MatchedHash:
    """One stored hash accepted as evidence of a match: which query frame, how close."""

    frame: int
    hash_id: int
    signal: str
    distance: int


@dataclass(frozen=True)
class CaseMatch:
    """A case the scan matches: best distance per signal over the matching frames, and the
    stored hashes that matched (per frame, the closest of each signal)."""

    case_id: str
    distances: dict[str, int]
    matched_frames: int
    evidence: tuple[MatchedHash, ...] = ()

    @property
    def hash_ids(self) -> tuple[int, ...]:
        """The stored hashes that matched, without repeats, in increasing order."""
        return tuple(sorted({e.hash_id for e in self.evidence}))

    @property
    def signal(self) -> str:
        """The strongest evidence: PDQ when it matched, else the closest signal."""
        if PRIMARY in self.distances:
            return PRIMARY
        return min(self.distances, key=lambda s: (self.distances[s], s))

    @property
    def distance(self) -> int:
        return self.distances[self.signal]


_Hit = MatchedHash


@dataclass
class _FrameEvidence:
    """Best hit per signal of one frame against one case."""

    best: dict[str, _Hit] = field(default_factory=dict)

    def add(self, hit: _Hit) -> None:
        current = self.best.get(hit.signal)
        if current is None or (hit.distance, hit.hash_id) < (current.distance, current.hash_id):
            self.best[hit.signal] = hit


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

    def _corroboration_radius(self) -> int:
        return max(self._settings.pdq_threshold, self._settings.pdq_corroboration_distance)

    async def _lookup(
        self, signal: str, frames: list[int], codes: list[bytes], radius: int
    ) -> list[_Hit]:
        index = self._replicas.index(signal)
        queries = np.frombuffer(b"".join(codes), dtype=np.uint8).reshape(len(codes), -1)
        lims, ids, dists = await anyio.to_thread.run_sync(index.search, queries, radius)
        counts = np.diff(lims)
        query_of_hit = np.repeat(np.asarray(frames, dtype=np.int64), counts)
        return [
            _Hit(int(f), int(i), signal, int(d))
            for f, i, d in zip(query_of_hit, ids, dists, strict=True)
        ]

    async def match(self, entries: Sequence[HashEntry]) -> list[CaseMatch]:
        """Match one image's hashes (a single frame)."""
        return await self.match_frames([entries], min_frames=1)

    async def match_frames(
        self, frames: Sequence[Sequence[HashEntry]], *, min_frames: int
    ) -> list[CaseMatch]:
        """Cases matched by at least ``min_frames`` frames, closest first."""
        await self._replicas.catch_up()
        per_signal: dict[str, tuple[list[int], list[bytes]]] = defaultdict(lambda: ([], []))
        for number, entries in enumerate(frames):
            for entry in entries:
                per_signal[entry.signal][0].append(number)
                per_signal[entry.signal][1].append(entry.code)
        hits = [
            h
            for s, (f, c) in per_signal.items()
            for h in await self._lookup(s, f, c, self._settings.threshold_for(s))
        ]
        evidence: dict[str, dict[int, _FrameEvidence]] = defaultdict(dict)
        await self._add_evidence(evidence, hits)
        frames_with_primary = set(per_signal.get(PRIMARY, ([], []))[0])
        # PDQ hits beyond the PDQ threshold only ever corroborate a pHash hit, and a search at
        # the corroboration radius costs ~30x one at the threshold (N = 1M): search that far
        # only for the frames with a secondary hit that PDQ has not already corroborated.
        wide = self._corroboration_radius()
        pending = _uncorroborated(evidence, frames_with_primary)
        if pending and wide > self._settings.pdq_threshold:
            numbers, codes = per_signal[PRIMARY]
            chosen = [(f, c) for f, c in zip(numbers, codes, strict=True) if f in pending]
            await self._add_evidence(
                evidence,
                await self._lookup(PRIMARY, [f for f, _ in chosen], [c for _, c in chosen], wide),
            )
        matches = []
        for case_id, by_frame in evidence.items():
            found = await self._case_match(case_id, by_frame, frames_with_primary, min_frames)
            if found is not None:
                matches.append(found)
        return sorted(matches, key=lambda m: (m.distance, m.case_id))

    async def _add_evidence(
        self, evidence: dict[str, dict[int, _FrameEvidence]], hits: list[_Hit]
    ) -> None:
        """File each hit under its case (read from Redis) and frame."""
        owners = await self._changes.owners([h.hash_id for h in hits])
        for hit, case_id in zip(hits, owners, strict=True):
            if case_id is not None:
                evidence[case_id].setdefault(hit.frame, _FrameEvidence()).add(hit)

    async def _case_match(
        self,
        case_id: str,
        by_frame: dict[int, _FrameEvidence],
        frames_with_primary: set[int],
        min_frames: int,
    ) -> CaseMatch | None:
        distances: dict[str, int] = {}
        matched = 0
        evidence: list[MatchedHash] = []
        for frame, frame_evidence in by_frame.items():
            accepted = await self._accept(
                case_id, frame_evidence.best, query_has_primary=frame in frames_with_primary
            )
            matched += bool(accepted)
            evidence += accepted.values()
            for signal, hit in accepted.items():
                distances[signal] = min(distances.get(signal, hit.distance), hit.distance)
        if matched < min_frames:
            return None
        return CaseMatch(case_id, distances, matched, tuple(evidence))

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


def _uncorroborated(
    evidence: dict[str, dict[int, _FrameEvidence]], frames_with_primary: set[int]
) -> set[int]:
    """Frames carrying a PDQ query where some case has a secondary hit but no PDQ hit yet."""
    return {
        frame
        for by_frame in evidence.values()
        for frame, found in by_frame.items()
        if frame in frames_with_primary
        and PRIMARY not in found.best
        and any(signal != PRIMARY for signal in found.best)
    }
