"""The Redis client against a real server: a burst of concurrent commands larger than the
connection pool waits for connections instead of failing (S5 saw spurious 503s)."""

from __future__ import annotations

import asyncio

from hashsvc.store.client import MAX_CONNECTIONS, connect


def test_burst_beyond_the_pool_waits_instead_of_failing(redis_url: str) -> None:
    async def burst() -> list[object]:
        client = connect(redis_url)
        try:
            # BLPOP on an empty list with a short timeout holds a connection for 0.2 s each.
            calls = [
                client.blpop(["hashsvc:test:empty"], timeout=0.2)
                for _ in range(3 * MAX_CONNECTIONS)
            ]
            return await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), 30)
        finally:
            await client.aclose()

    results = asyncio.run(burst())
    assert len(results) == 3 * MAX_CONNECTIONS
    assert [r for r in results if isinstance(r, BaseException)] == []
