"""Trust and safety of the hash bank: which matches may raise flags, the allow-list bank, the
feedback loop, and operators' quarantine decisions.

- **Breaker** (flood / poisoning): every scan with matches counts one match event per stored
  hash that matched (``store/quarantine.py``, one Lua call that also trips the breaker and
  reports each hash's state). A match is *held* (no flag; still counted for operators) when a
  quarantined hash is among its evidence in a frame: that frame no longer counts, and the match
  stands only if enough other frames still do (one frame for an image).
- **Allow-list**: operators' hashes of known-benign content. A query frame whose PDQ hash is
  within the PDQ threshold of an allow-listed PDQ hash (or, for a frame without PDQ, whose
  pHash is within the pHash threshold of an allow-listed pHash: the matching rule's fusion,
  pHash alone being too loose) raises no flag; victim submissions are refused by the same
  rule, with a neutral message; bank hashes within the PDQ threshold of a new allow-list entry
  are quarantined for an operator. Each process keeps the allow-list in memory (one
  ``HammingIndex`` per signal) and reloads it when its version in Redis changes; the version
  comes back with the breaker's reply, so scans pay no extra round trip.
- **Feedback**: platforms' decisions are kept per stored hash and platform; ``not_violating``
  from ``feedback_not_violating_platforms`` distinct platforms quarantines the hash.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import anyio.to_thread
import numpy as np

from hashsvc.config import Settings
from hashsvc.errors import HashsvcError
from hashsvc.index import HammingIndex
from hashsvc.matching.matcher import PRIMARY, CaseMatch, MatchedHash
from hashsvc.matching.replica import ReplicaSet
from hashsvc.models import Flag, HashEntry
from hashsvc.observability import TRUST_EVENTS
from hashsvc.signals import SIGNALS
from hashsvc.store import Store
from hashsvc.store.quarantine import (
    ACTIVE,
    CONFIRMED,
    QUARANTINED,
    BreakerLimits,
    HashTrust,
    hash_ref,
    parse_hash_ref,
)


class HashNotAccepted(HashsvcError):
    """A submitted hash the bank will not take (an allow-listed one). The message is neutral
    on purpose: it must not reveal that an allow-list exists, nor what is in it."""

    code = "hash_not_accepted"
    status = 422


class HashNotFound(HashsvcError):
    code = "hash_not_found"
    status = 404

    def __init__(self, ref: str) -> None:
        super().__init__(f"no stored hash {ref!r}")


class HashStateConflict(HashsvcError):
    code = "hash_state_conflict"
    status = 409


class AllowEntryNotFound(HashsvcError):
    code = "allowlist_entry_not_found"
    status = 404

    def __init__(self, entry_id: str) -> None:
        super().__init__(f"no allow-list entry {entry_id!r}")


def limits_of(settings: Settings) -> BreakerLimits:
    return BreakerLimits(
        uploads=settings.breaker_matches_per_window,
        platforms=settings.breaker_platforms,
        window_s=settings.breaker_window_s,
        oracle_matches=settings.oracle_alert_matches,
        oracle_window_s=settings.oracle_window_s,
    )


class AllowList:
    """This process's copy of the allow-list bank, one ``HammingIndex`` per signal."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self._store = store
        self._settings = settings
        self._indexes = {name: HammingIndex(bits=s.bits) for name, s in SIGNALS.items()}
        self._version: str | None = None
        self._lock = asyncio.Lock()

    async def refresh(self, version: str | None = None) -> None:
        """Reload when Redis holds another version (read here unless given)."""
        current = version if version is not None else await self._store.allowlist.version()
        if current == self._version:
            return
        async with self._lock:
            if current == self._version:
                return
            fresh: dict[str, HammingIndex] = {}
            loaded = None
            for name, signal in SIGNALS.items():
                loaded, codes = await self._store.allowlist.codes(name)
                index = HammingIndex(bits=signal.bits)
                if codes:
                    ids = np.arange(len(codes), dtype=np.int64)
                    packed = np.frombuffer(b"".join(codes.values()), dtype=np.uint8)
                    index.add(ids, packed.reshape(len(codes), signal.bits // 8))
                fresh[name] = index
            self._indexes, self._version = fresh, loaded

    def near(self, signal: str, codes: Sequence[bytes]) -> list[bool]:
        """For each code, whether an allow-listed code of ``signal`` is within its threshold."""
        index = self._indexes[signal]
        if not codes or not len(index):
            return [False] * len(codes)
        queries = np.frombuffer(b"".join(codes), dtype=np.uint8).reshape(len(codes), -1)
        lims, _, _ = index.search(queries, self._settings.threshold_for(signal))
        return [bool(n) for n in np.diff(lims)]

    def listed(self, frame: Sequence[HashEntry]) -> bool:
        """Whether a frame (one picture's hashes, any views) shows allow-listed content: a
        PDQ hash near an allow-listed one; a pHash counts only for a frame without PDQ."""
        by_signal: dict[str, list[bytes]] = {}
        for entry in frame:
            by_signal.setdefault(entry.signal, []).append(entry.code)
        if PRIMARY in by_signal:
            return any(self.near(PRIMARY, by_signal[PRIMARY]))
        return any(any(self.near(s, codes)) for s, codes in by_signal.items())


@dataclass(frozen=True)
class Quarantined:
    """A quarantine queue entry, as operators see it."""

    trust: HashTrust
    case_id: str | None
    signal: str | None


class Trust:
    """The trust and safety use-cases of one process (API or worker)."""

    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self.store = store
        self.limits = limits_of(settings)
        self.allowlist = AllowList(store, settings)

    async def admit(
        self,
        matches: Sequence[CaseMatch],
        frames: Sequence[Sequence[HashEntry]],
        platform_id: str,
        *,
        upload_id: str,
        min_frames: int = 1,
        hash_only: bool = False,
    ) -> list[CaseMatch]:
        """The matches that may raise flags: count the match events (breaker), then drop the
        evidence of frames that show allow-listed content or matched a quarantined hash."""
        if not matches:
            return []
        hash_ids = sorted({h for m in matches for h in m.hash_ids})
        verdict = await self.store.quarantine.record_matches(
            hash_ids,
            platform_id,
            upload_id,
            self.limits,
            now=time.time(),
            hash_only=hash_only,
        )
        for _ in verdict.tripped():
            TRUST_EVENTS.labels("quarantined_breaker").inc()
        if verdict.oracle_alert:
            TRUST_EVENTS.labels("oracle_alert").inc()
        await self.allowlist.refresh(verdict.allowlist_version)
        listed = {n for n, frame in enumerate(frames) if self.allowlist.listed(frame)}
        held = verdict.held()
        admitted = []
        for match in matches:
            kept = _without(match, held, listed, min_frames)
            if kept is None:
                TRUST_EVENTS.labels("held").inc()
            else:
                admitted.append(kept)
        return admitted

    async def check_submission(self, entries: Sequence[HashEntry], where: Sequence[str]) -> None:
        """Refuse a victim submission holding an allow-listed hash (neutral message)."""
        await self.allowlist.refresh()
        has_primary = any(e.signal == PRIMARY for e in entries)
        for entry, place in zip(entries, where, strict=True):
            if entry.signal != PRIMARY and has_primary:
                continue  # pHash alone is too loose: PDQ speaks for the picture
            if self.allowlist.near(entry.signal, [entry.code])[0]:
                raise HashNotAccepted(f"{place}: this hash cannot be accepted")

    async def record_decision(self, flag: Flag) -> list[int]:
        """Aggregate a platform's decision on a flag; quarantine hashes past the threshold."""
        done = await self.store.quarantine.record_decision(
            flag.hash_ids,
            flag.flag_id,
            flag.platform_id,
            flag.decision.value,
            min_platforms=self.settings.feedback_not_violating_platforms,
            now=time.time(),
        )
        for _ in done:
            TRUST_EVENTS.labels("quarantined_feedback").inc()
        return done

    async def add_allowlisted(
        self, entries: Sequence[HashEntry], replicas: ReplicaSet, *, actor: str, label: str
    ) -> tuple[list[str], list[int]]:
        """Add allow-list entries; quarantine the bank's PDQ hashes within the PDQ threshold
        of them (for an operator to confirm or release). Returns entry ids, quarantined ids."""
        ids = await self.store.allowlist.add(entries, actor=actor, label=label)
        pdq = [e.code for e in entries if e.signal == PRIMARY]
        collide: list[int] = []
        if pdq:
            await replicas.catch_up()
            queries = np.frombuffer(b"".join(pdq), dtype=np.uint8).reshape(len(pdq), -1)
            _, found, _ = await anyio.to_thread.run_sync(
                replicas.index(PRIMARY).search, queries, self.settings.pdq_threshold
            )
            collide = sorted({int(h) for h in found})
        done = await self.store.quarantine.quarantine(collide, "allowlist", now=time.time())
        for _ in done:
            TRUST_EVENTS.labels("quarantined_allowlist").inc()
        return ids, done

    async def release(self, ref: str) -> HashTrust:
        """A quarantined hash back to active: it raises flags again (breaker window cleared)."""
        return await self._move(ref, QUARANTINED, ACTIVE)

    async def confirm(self, ref: str) -> HashTrust:
        """A quarantined hash stays in the bank, active, and is never quarantined
        automatically again (breaker, feedback, allow-list) until it is reset."""
        return await self._move(ref, QUARANTINED, CONFIRMED)

    async def reset(self, ref: str) -> HashTrust:
        """A confirmed hash back to active: automatic quarantine applies to it again."""
        return await self._move(ref, CONFIRMED, ACTIVE)

    async def _move(self, ref: str, expected: str, state: str) -> HashTrust:
        hash_id = await self._existing(ref)
        before = await self.store.quarantine.set_state(
            hash_id, state, now=time.time(), expected=expected
        )
        if before is None:
            raise HashStateConflict(f"{ref} is not {expected}")
        return (await self.store.quarantine.describe([hash_id]))[0]

    async def history(self, ref: str) -> Quarantined:
        hash_id = await self._existing(ref)
        owner = await self.store.cases.hash_owner(hash_id)
        trust = (await self.store.quarantine.describe([hash_id]))[0]
        return Quarantined(trust, *(owner or (None, None)))

    async def queue(self, *, limit: int, offset: int) -> list[Quarantined]:
        rows = await self.store.quarantine.quarantined(limit=limit, offset=offset)
        described = await self.store.quarantine.describe([h for h, _ in rows])
        found = []
        for trust in described:
            owner = await self.store.cases.hash_owner(trust.hash_id)
            found.append(Quarantined(trust, *(owner or (None, None))))
        return found

    async def stats(self) -> dict[str, Any]:
        """Bank statistics (flags from the per-platform counters the flag scripts keep)."""
        store = self.store
        platform_ids = [p.platform_id for p in await store.platforms.all()]
        statuses, decisions = await store.flags.tally(platform_ids)
        return {
            "hashes": {s: await store.cases.bank_size(s) for s in SIGNALS},
            "cases": await store.cases.count(),
            "flags": statuses,
            "decisions": decisions,
            "quarantined": await store.quarantine.count(),
            "allowlisted": {s: await store.allowlist.size(s) for s in SIGNALS},
        }

    async def _existing(self, ref: str) -> int:
        hash_id = parse_hash_ref(ref)
        if hash_id is None or await self.store.cases.hash_owner(hash_id) is None:
            raise HashNotFound(ref)
        return hash_id


def _without(
    match: CaseMatch, held: set[int], listed: set[int], min_frames: int
) -> CaseMatch | None:
    """``match`` without the frames that matched a held hash or show allow-listed content;
    None when fewer than ``min_frames`` frames are left."""
    if not match.evidence:
        return match
    dropped = listed | {e.frame for e in match.evidence if e.hash_id in held}
    kept: list[MatchedHash] = [e for e in match.evidence if e.frame not in dropped]
    frames = {e.frame for e in kept}
    if not kept or len(frames) < max(1, min_frames):
        return None
    if len(kept) == len(match.evidence):
        return match
    distances: dict[str, int] = {}
    for e in kept:
        distances[e.signal] = min(distances.get(e.signal, e.distance), e.distance)
    return replace(match, distances=distances, matched_frames=len(frames), evidence=tuple(kept))


__all__ = ["AllowList", "HashNotAccepted", "Trust", "hash_ref"]
