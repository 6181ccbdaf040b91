"""Flag pages against a real Redis: flags raised at the same instant are neither skipped nor
repeated across page boundaries, and a status filter still fills pages."""

from __future__ import annotations

import asyncio

from hashsvc.models import Decision, Flag, FlagStatus, HashEntry
from hashsvc.store import Store


def test_same_instant_flags_are_paged_exactly_once(redis_url: str) -> None:
    async def run() -> None:
        store = Store.open(redis_url)
        try:
            await store.cases.create("case_" + "A" * 22, "v", [HashEntry("phash", bytes(range(8)))])
            instants = [1000.0] * 7 + [999.5] * 3 + [998.0] * 5  # ties across page boundaries
            raised = []
            for n, created_at in enumerate(instants):
                flag = Flag(f"f_{n:03d}", "p_1", "P", "pdq", 3, 1, created_at)
                assert await store.flags.create(flag, "case_" + "A" * 22)
                raised.append(flag.flag_id)
            await store.flags.decide("p_1", "f_004", Decision.REMOVED)
            for limit in (1, 2, 3, 4, 7, 15, 16):
                seen, after = [], None
                while True:
                    page, after = await store.flags.for_platform(
                        "p_1", status=None, limit=limit, after=after
                    )
                    assert len(page) <= limit
                    seen += [f.flag_id for f in page]
                    if after is None:
                        break
                assert sorted(seen) == sorted(raised), limit
                assert len(seen) == len(set(seen))
            open_only, after = await store.flags.for_platform(
                "p_1", status=FlagStatus.OPEN, limit=14, after=None
            )
            assert len(open_only) == 14
            assert "f_004" not in {f.flag_id for f in open_only}
            rest, after = await store.flags.for_platform(
                "p_1", status=FlagStatus.OPEN, limit=14, after=after
            )
            assert rest == []
            assert after is None
        finally:
            await store.close()

    asyncio.run(run())
