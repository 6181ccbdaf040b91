"""Platform-side matching against a replica kept by ``hashsvc sync``: no media leaves the platform.

A platform that follows the partner feed holds the bank (and any imported lists) in its own
Redis (``hashsvc.partner.Replica``). ``LocalMatcher`` loads it into one in-memory
``HammingIndex`` per signal and answers "which replica hashes does this upload match" with the
same upload-side views and thresholds as the service's scans.

The decision differs from the service's in one way, by construction of the feed: hashes are
named by opaque ids that do not say which case they belong to, so a pHash hit cannot be
corroborated by a PDQ hit of the same case. pHash alone would give about two false candidates
per upload against a million hashes, so here only PDQ decides (within the PDQ threshold, over
any upload view); pHash is not looked up. A video matches when at least
``video_min_matching_frames`` of its frames match some PDQ hash of the replica.

The index is rebuilt whenever the replica moved (its feed cursor or the size of an imported
list changed), read before each match: a hash withdrawn at the server stops matching here as
soon as ``hashsvc sync`` has applied the withdrawal.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import anyio.to_thread
import numpy as np

from hashsvc.config import Settings
from hashsvc.hashing import ComputedHash, MediaHashes, usable_views
from hashsvc.index import HammingIndex
from hashsvc.partner import Replica
from hashsvc.signals import SIGNALS

PDQ = "pdq"


@dataclass(frozen=True)
class LocalMatch:
    """A replica hash matched by an upload: its feed id (or ``imported:<digest>``), the best
    distance, the upload view that gave it and how many frames matched it."""

    hash_id: str
    distance: int
    variant: str
    frames: int


@dataclass(frozen=True)
class LocalVerdict:
    """The outcome of one upload: ``matched`` decides; ``matches`` are closest first."""

    kind: str
    matched: bool
    matched_frames: int
    matches: tuple[LocalMatch, ...]


class _Loaded:
    """One signal's replica as an index over positions, with the feed id of each position."""

    def __init__(self, codes: dict[str, str], bits: int) -> None:
        self.ids = list(codes)
        self.index = HammingIndex(bits=bits)
        if self.ids:
            signal = SIGNALS[PDQ]
            packed = b"".join(signal.parse_hex(codes[i]) for i in self.ids)
            array = np.frombuffer(packed, dtype=np.uint8).reshape(len(self.ids), bits // 8)
            self.index.add(np.arange(len(self.ids), dtype=np.int64), array)


class LocalMatcher:
    """Matches upload hashes against a platform's replica of the bank."""

    def __init__(self, replica: Replica, settings: Settings) -> None:
        self._replica = replica
        self._settings = settings
        self._loaded: _Loaded | None = None
        self._version: tuple[str, ...] | None = None

    @property
    def size(self) -> int:
        """PDQ hashes in the loaded index (0 before the first ``refresh``)."""
        return len(self._loaded.ids) if self._loaded else 0

    async def refresh(self) -> bool:
        """Reload the index if the replica moved since the last load; True when it did."""
        version = await self._replica.version()
        if version == self._version and self._loaded is not None:
            return False
        codes = await self._replica.all_codes(PDQ)
        self._loaded = await anyio.to_thread.run_sync(_Loaded, codes, SIGNALS[PDQ].bits)
        self._version = version
        return True

    async def match(self, media: MediaHashes) -> LocalVerdict:
        """The verdict for one upload's upload-side hashes (``hash_media(..., upload=True)``)."""
        await self.refresh()
        assert self._loaded is not None
        frames = [self._pdq_views(frame) for frame in media.frames]
        best: dict[str, LocalMatch] = {}
        matched_frames = 0
        for views in frames:
            hits = await anyio.to_thread.run_sync(self._search, views)
            matched_frames += bool(hits)
            for hash_id, (distance, variant) in hits.items():
                seen = best.get(hash_id)
                count = (seen.frames if seen else 0) + 1
                if seen is None or distance < seen.distance:
                    best[hash_id] = LocalMatch(hash_id, distance, variant, count)
                else:
                    best[hash_id] = LocalMatch(hash_id, seen.distance, seen.variant, count)
        needed = 1 if media.kind == "image" else self._settings.video_min_matching_frames
        ordered = sorted(best.values(), key=lambda m: (m.distance, m.hash_id))
        matched = matched_frames >= needed
        return LocalVerdict(media.kind, matched, matched_frames, tuple(ordered) if matched else ())

    def _pdq_views(self, frame: Sequence[ComputedHash]) -> list[ComputedHash]:
        usable = usable_views(frame, self._settings.pdq_min_quality)
        return [h for h in usable if h.signal == PDQ]

    def _search(self, views: Sequence[ComputedHash]) -> dict[str, tuple[int, str]]:
        """Best (distance, view) per replica hash within the PDQ threshold, for one frame."""
        assert self._loaded is not None
        if not views or not self._loaded.ids:
            return {}
        queries = np.frombuffer(b"".join(v.code for v in views), dtype=np.uint8)
        queries = queries.reshape(len(views), -1)
        lims, positions, distances = self._loaded.index.search(
            queries, self._settings.threshold_for(PDQ)
        )
        hits: dict[str, tuple[int, str]] = {}
        for query, view in enumerate(views):
            for position, distance in zip(
                positions[lims[query] : lims[query + 1]],
                distances[lims[query] : lims[query + 1]],
                strict=True,
            ):
                hash_id = self._loaded.ids[int(position)]
                if hash_id not in hits or int(distance) < hits[hash_id][0]:
                    hits[hash_id] = (int(distance), view.variant)
        return hits
