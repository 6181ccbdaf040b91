"""The partner feed API on a real uvicorn and Redis: scopes, snapshot pages, commit order,
tombstones, expired cursors and opaque ids."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from hashsvc import feed
from hashsvc.config import Settings
from tests.helpers import bearer
from tests.live import LiveService, start_service
from tests.partner.conftest import (
    Bank,
    Pair,
    apply,
    bank_pairs,
    follow,
    internal_ids,
    make_platform_key,
    snapshot,
)

ENDPOINTS = [
    ("/v1/hashes/snapshot", {}),
    ("/v1/hashes/feed", {"cursor": "0"}),
]


@pytest.mark.parametrize(("path", "params"), ENDPOINTS)
def test_feed_scope_is_required(
    client: httpx.Client,
    settings: Settings,
    redis_url: str,
    admin_key: str,
    feed_key: str,
    path: str,
    params: dict[str, str],
) -> None:
    assert client.get(path, params=params).status_code == 401
    wrong = client.get(path, params=params, headers=bearer("hsk_platform_" + "x" * 43))
    assert wrong.status_code == 401
    scan_review = make_platform_key(settings, redis_url, "scan", "review")
    refused = client.get(path, params=params, headers=bearer(scan_review))
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "forbidden"
    assert client.get(path, params=params, headers=bearer(admin_key)).status_code == 403
    assert client.get(path, params=params, headers=bearer(feed_key)).status_code == 200


@pytest.fixture
def small_ranges(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ranges of 8 ids, 2 per page: pages cross ranges and stop in sparse parts."""
    monkeypatch.setattr(feed, "ID_RANGE", 8)
    monkeypatch.setattr(feed, "MAX_RANGES_PER_PAGE", 2)


@pytest.mark.usefixtures("small_ranges")
@pytest.mark.parametrize("limit", [1, 5, 1000])
def test_snapshot_pages_hold_exactly_the_bank(
    client: httpx.Client, bank: Bank, feed_key: str, redis_url: str, limit: int
) -> None:
    cases = [bank.submit(pdq=3, phash=1) for _ in range(20)]
    for case_id in cases[::3]:  # sparse ranges, one whole range withdrawn
        bank.withdraw(case_id)
    for case_id in cases[4:6]:
        if case_id in bank.cases:
            bank.withdraw(case_id)
    items, resume, pages = snapshot(client, feed_key, limit=limit)
    assert re.fullmatch(r"[0-9]+-[0-9]+", resume)
    ids = [item["id"] for item in items]
    assert len(ids) == len(set(ids)), "an item was given twice"
    assert {(i["signal"], i["hash"]) for i in items} == bank_pairs(redis_url)
    assert len(items) == len(bank_pairs(redis_url))
    if limit == 1:
        assert pages >= len(items)


def test_an_empty_bank_has_an_empty_snapshot(client: httpx.Client, feed_key: str) -> None:
    items, resume, pages = snapshot(client, feed_key)
    assert (items, resume, pages) == ([], "0-0", 1)


def test_feed_in_commit_order_with_tombstones(
    client: httpx.Client, bank: Bank, feed_key: str, redis_url: str
) -> None:
    _, cursor, _ = snapshot(client, feed_key)
    first, second = bank.submit(pdq=2, phash=1), bank.submit(pdq=1, phash=1)
    changes, cursor = follow(client, feed_key, cursor, limit=2)
    assert [c["op"] for c in changes] == ["add"] * 5
    assert [c["signal"] for c in changes] == ["pdq", "pdq", "phash", "pdq", "phash"]
    added = {c["id"]: (c["signal"], c["hash"]) for c in changes}
    assert set(added.values()) == bank_pairs(redis_url)
    assert all(len(h) == (64 if s == "pdq" else 16) for s, h in added.values())

    bank.withdraw(first)
    removed, cursor = follow(client, feed_key, cursor)
    assert [c["op"] for c in removed] == ["remove"] * 3
    assert {c["id"] for c in removed} == {c["id"] for c in changes[:3]}, "same opaque ids"
    assert all(set(c) == {"op", "id", "signal"} for c in removed)

    # Added and withdrawn between two polls: the consumer sees only removes.
    third = bank.submit(pdq=2, phash=0)
    bank.withdraw(third)
    bank.withdraw(second)
    last, cursor = follow(client, feed_key, cursor)
    assert [c["op"] for c in last] == ["remove"] * 6
    assert bank_pairs(redis_url) == set()
    # Nothing new: an empty page that keeps the cursor.
    assert follow(client, feed_key, cursor) == ([], cursor)


def test_snapshot_then_feed_converge_while_the_bank_changes(
    client: httpx.Client, bank: Bank, feed_key: str, redis_url: str
) -> None:
    cases = [bank.submit() for _ in range(10)]
    first = client.get("/v1/hashes/snapshot", params={"limit": 4}, headers=bearer(feed_key))
    replica: dict[str, Pair] = {i["id"]: (i["signal"], i["hash"]) for i in first.json()["items"]}
    page = first.json()["next_page"]
    # Changes while the snapshot is being read: some land in it, all are in the feed.
    for case_id in cases[:5]:
        bank.withdraw(case_id)
    more = [bank.submit() for _ in range(3)]
    while page is not None:
        answer = client.get(
            "/v1/hashes/snapshot", params={"limit": 4, "page": page}, headers=bearer(feed_key)
        )
        replica.update({i["id"]: (i["signal"], i["hash"]) for i in answer.json()["items"]})
        page = answer.json()["next_page"]
    changes, cursor = follow(client, feed_key, first.json()["resume_cursor"])
    apply(replica, changes)
    assert set(replica.values()) == bank_pairs(redis_url)
    assert len(replica) == len(bank_pairs(redis_url))
    bank.withdraw(more[0])
    changes, _ = follow(client, feed_key, cursor)
    apply(replica, changes)
    assert set(replica.values()) == bank_pairs(redis_url)


def test_ids_are_opaque_and_stable(
    client: httpx.Client, bank: Bank, feed_key: str, settings: Settings, redis_url: str
) -> None:
    changes, _ = follow(client, feed_key, "0")
    assert changes == []
    for _ in range(5):
        bank.submit(pdq=2, phash=1)
    changes, _ = follow(client, feed_key, "0")
    items, _, _ = snapshot(client, feed_key)
    ids = [c["id"] for c in changes]
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    assert not set(ids) & internal_ids(redis_url)
    assert not {str(int(i, 16)) for i in ids} & internal_ids(redis_url)
    # Adjacent internal ids (one case's hashes) give unrelated ids.
    assert len({i[:8] for i in ids}) == len(ids)
    assert {i["id"]: (i["signal"], i["hash"]) for i in items} == {
        c["id"]: (c["signal"], c["hash"]) for c in changes
    }
    # The snapshot is not in submission order.
    assert [i["id"] for i in items] == sorted(i["id"] for i in items)
    assert [i["id"] for i in items] != ids
    # Another key, even of another platform, sees the same ids.
    other = make_platform_key(settings, redis_url, "feed", "scan")
    again, _ = follow(client, other, "0")
    assert [c["id"] for c in again] == ids


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({}, 422),  # the cursor is required
        ({"cursor": "latest"}, 422),
        ({"cursor": "1-2-3"}, 422),
        ({"cursor": "18446744073709551616-0"}, 422),  # past 64 bits: not a stream id
        ({"cursor": "9999999999999999999-9999999999999999999"}, 410),
        ({"cursor": "0-0", "limit": "1001"}, 422),
        ({"cursor": "0-0", "limit": "0"}, 422),
        ({"cursor": "99999999999999-0"}, 410),  # not an entry of the stream
    ],
)
def test_bad_cursors(
    client: httpx.Client, feed_key: str, bank: Bank, params: dict[str, str], status: int
) -> None:
    bank.submit()
    answer = client.get("/v1/hashes/feed", params=params, headers=bearer(feed_key))
    assert answer.status_code == status, answer.text


@pytest.mark.parametrize("page", ["x", "bm90LWEtdG9rZW4", "MS4yLnp6"])
def test_bad_page_tokens(client: httpx.Client, feed_key: str, page: str) -> None:
    answer = client.get("/v1/hashes/snapshot", params={"page": page}, headers=bearer(feed_key))
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["code"] == "bad_request"


@pytest.fixture
def short_stream(settings: Settings, redis_url: str) -> Iterator[httpx.Client]:
    """A service whose change stream keeps about 10 entries (trimmed 100 at a time)."""
    live: LiveService = start_service(
        settings.model_copy(update={"change_stream_retention": 10}), redis_url
    )
    with httpx.Client(base_url=live.url, timeout=30) as http:
        yield http
    live.stop()


def test_trimmed_cursor_is_410_and_a_resync_recovers_exactly_the_bank(
    short_stream: httpx.Client, settings: Settings, redis_url: str
) -> None:
    client = short_stream
    key = make_platform_key(settings, redis_url, "feed")
    bank = Bank(client)
    cases = [bank.submit(pdq=2, phash=1) for _ in range(3)]
    # From "0" while the stream is shorter than its retention (so never trimmed): every change.
    changes, _ = follow(client, key, "0")
    assert len(changes) == 9
    items, cursor, _ = snapshot(client, key)
    replica: dict[str, Pair] = {i["id"]: (i["signal"], i["hash"]) for i in items}
    assert set(replica.values()) == bank_pairs(redis_url)

    # The consumer is away; a withdrawal it must not miss, then enough churn to trim its cursor.
    bank.withdraw(cases[0])
    for _ in range(40):
        bank.submit(pdq=2, phash=1)
    for case_id in list(bank.cases)[:30]:
        bank.withdraw(case_id)
    for start in (cursor, "0"):
        expired = client.get("/v1/hashes/feed", params={"cursor": start}, headers=bearer(key))
        assert expired.status_code == 410, expired.text
        assert expired.json()["error"]["code"] == "cursor_expired"
        assert "snapshot" in expired.json()["error"]["message"]

    items, cursor, _ = snapshot(client, key, limit=7)
    replica = {i["id"]: (i["signal"], i["hash"]) for i in items}
    for case_id in list(bank.cases)[:3]:
        bank.withdraw(case_id)
    changes, _ = follow(client, key, cursor)
    apply(replica, changes)
    assert set(replica.values()) == bank_pairs(redis_url)
    assert len(replica) == len(bank_pairs(redis_url))


def test_feed_reads_are_not_audited(
    client: httpx.Client, feed_key: str, bank: Bank, admin_key: str
) -> None:
    bank.submit()

    def audit() -> list[Any]:
        answer = client.get("/v1/admin/audit", headers=bearer(admin_key))
        assert answer.status_code == 200, answer.text
        entries: list[Any] = answer.json()["entries"]
        return entries

    before = audit()
    snapshot(client, feed_key)
    follow(client, feed_key, "0")
    assert audit() == before
