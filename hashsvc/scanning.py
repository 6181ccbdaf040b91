"""The one scan pipeline, shared by the API and the workers: hashes (given, or computed from
media) -> case matches -> the matches that may raise flags (``admitted``: the breaker, the
quarantine and the allow-list of ``hashsvc.trust``) -> flags raised for the platform (and shown
on the victims' cases) -> hits for the platform. Platforms get opaque flag ids, never case ids;
a held match is invisible to them."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from hashsvc.matching import Matcher
from hashsvc.matching.matcher import CaseMatch
from hashsvc.models import Flag, HashEntry, Platform
from hashsvc.security import derived_flag_id, new_flag_id
from hashsvc.store import Store
from hashsvc.trust import Trust


@dataclass(frozen=True)
class ScanHit:
    """What a platform learns about one match: the flag to review, the signal, its distance."""

    flag_id: str
    signal: str
    distance: int
    matched_frames: int = 1


def flags_for(
    matches: Sequence[CaseMatch], platform: Platform, *, job_id: str | None = None
) -> list[tuple[Flag, str]]:
    """One flag per matched case, with the case id it belongs to (kept server-side)."""
    now = time.time()
    return [
        (
            Flag(
                flag_id=new_flag_id() if job_id is None else derived_flag_id(job_id, m.case_id),
                platform_id=platform.platform_id,
                platform_name=platform.name,
                signal=m.signal,
                distance=m.distance,
                matched_frames=m.matched_frames,
                created_at=now,
                job_id=job_id,
                hash_ids=m.hash_ids,
            ),
            m.case_id,
        )
        for m in matches
    ]


def hits_for(flags: Sequence[tuple[Flag, str]], matches: Sequence[CaseMatch]) -> list[ScanHit]:
    """The platform's view: per flag, the distance of every signal that matched."""
    by_case = {m.case_id: m for m in matches}
    hits = [
        ScanHit(flag.flag_id, signal, distance, flag.matched_frames)
        for flag, case_id in flags
        for signal, distance in sorted(by_case[case_id].distances.items())
    ]
    return sorted(hits, key=lambda h: (h.distance, h.flag_id, h.signal))


async def admitted(
    matches: Sequence[CaseMatch],
    frames: Sequence[Sequence[HashEntry]],
    platform: Platform,
    trust: Trust,
    *,
    upload_id: str,
    min_frames: int = 1,
    hash_only: bool = False,
) -> list[CaseMatch]:
    """The matches that may raise flags (every scan path asks here): each match event is
    counted by the breaker; frames that matched a quarantined hash or show allow-listed
    content are dropped (see ``hashsvc.trust``). ``upload_id`` names the upload once (a job
    id: a redelivered job counts once)."""
    return await trust.admit(
        matches,
        frames,
        platform.platform_id,
        upload_id=upload_id,
        min_frames=min_frames,
        hash_only=hash_only,
    )


async def scan(
    entries: Sequence[HashEntry],
    platform: Platform,
    matcher: Matcher,
    store: Store,
    trust: Trust,
    *,
    hash_only: bool = False,
) -> list[ScanHit]:
    """Synchronous scan of one image's hashes: match, raise flags, return the hits."""
    found = await matcher.match(entries)
    matches = await admitted(
        found, [entries], platform, trust, upload_id=uuid.uuid4().hex, hash_only=hash_only
    )
    raised = [
        (flag, case_id)
        for flag, case_id in flags_for(matches, platform)
        if await store.flags.create(flag, case_id)
    ]
    return hits_for(raised, matches)
