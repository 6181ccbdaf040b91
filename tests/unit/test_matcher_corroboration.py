"""The matcher's fusion rule at the edges of the PDQ distances, against a real Redis: a pHash
hit is corroborated by the case's PDQ up to ``pdq_corroboration_distance`` (beyond the PDQ
threshold: found by the wider search the matcher runs only for such frames), not past it."""

from __future__ import annotations

import asyncio

import numpy as np

from hashsvc.config import Settings
from hashsvc.matching import Matcher, ReplicaSet
from hashsvc.models import HashEntry
from hashsvc.signals import SIGNALS
from hashsvc.store import Store

CASE = "case_corroborate" + "C" * 7
OTHER = "case_pdqonly" + "D" * 11


def flipped(code: bytes, bits: int) -> bytes:
    """``code`` with its first ``bits`` bits flipped (at Hamming distance ``bits``)."""
    array = np.unpackbits(np.frombuffer(code, dtype=np.uint8))
    array[:bits] ^= 1
    return np.packbits(array).tobytes()


def test_phash_hits_are_corroborated_up_to_the_corroboration_distance(redis_url: str) -> None:
    settings = Settings(redis_url=redis_url)
    rng = np.random.default_rng(7)
    pdq = rng.integers(0, 256, 32, dtype=np.uint8).tobytes()
    phash = rng.integers(0, 256, 8, dtype=np.uint8).tobytes()
    other_pdq = rng.integers(0, 256, 32, dtype=np.uint8).tobytes()
    assert settings.pdq_threshold < 45 <= settings.pdq_corroboration_distance < 70

    async def scenario() -> None:
        store = Store.open(redis_url)
        try:
            await store.cases.create(CASE, "v", [HashEntry("pdq", pdq), HashEntry("phash", phash)])
            await store.cases.create(OTHER, "v", [HashEntry("pdq", other_pdq)])
            replicas = ReplicaSet(store.changes, SIGNALS)
            await replicas.bootstrap()
            matcher = Matcher(replicas, store.changes, settings, store.cases.signals)

            async def matched(pdq_distance: int) -> dict[str, dict[str, int]]:
                query = [HashEntry("phash", phash), HashEntry("pdq", flipped(pdq, pdq_distance))]
                return {m.case_id: m.distances for m in await matcher.match(query)}

            assert await matched(10) == {CASE: {"pdq": 10, "phash": 0}}  # PDQ alone matches
            assert await matched(45) == {CASE: {"phash": 0}}  # corroborated beyond 31
            assert await matched(settings.pdq_corroboration_distance) == {CASE: {"phash": 0}}
            assert await matched(settings.pdq_corroboration_distance + 1) == {}
            assert await matched(70) == {}
            # A PDQ hit beyond the threshold without a pHash hit never matches.
            far = [HashEntry("pdq", flipped(other_pdq, 45))]
            assert await matcher.match(far) == []
        finally:
            await store.close()

    asyncio.run(scenario())
