"""`hashsvc sync` as a real process against a real server, keeping a replica in a second Redis
(the platform's): it converges to exactly the bank, across withdrawals made while it is down,
SIGKILLs at any point of a snapshot or of the feed, and a cursor the feed no longer holds.
Then export and import of hash lists."""

from __future__ import annotations

import json
import random
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from hashsvc.config import Settings
from tests.live import LiveService, start_service
from tests.partner.conftest import Bank, Consumer, bank_pairs, hashsvc, make_platform_key, snapshot


def assert_exactly_the_bank(
    consumer: Consumer, client: httpx.Client, key: str, redis_url: str
) -> None:
    replica = consumer.replica()
    items, _, _ = snapshot(client, key)
    assert replica == {i["id"]: (i["signal"], i["hash"]) for i in items}
    assert set(replica.values()) == bank_pairs(redis_url)
    assert consumer.state().keys() == {"server", "cursor"}, "no snapshot left half done"


def test_sync_follows_adds_and_withdrawals(
    consumer: Consumer, client: httpx.Client, bank: Bank, feed_key: str, redis_url: str
) -> None:
    cases = [bank.submit(pdq=2, phash=1) for _ in range(12)]
    out = consumer.once()
    assert "1 snapshot" in out
    assert_exactly_the_bank(consumer, client, feed_key, redis_url)
    assert len(consumer.replica()) == 36

    # While the consumer is down: withdrawals (one of a case added meanwhile) and adds.
    for case_id in cases[:5]:
        bank.withdraw(case_id)
    late = [bank.submit(pdq=1, phash=1) for _ in range(3)]
    bank.withdraw(late[0])
    withdrawn = set(consumer.replica().values()) - bank_pairs(redis_url)
    out = consumer.once()
    assert "snapshot" not in out, "followed the feed, no new snapshot"
    assert_exactly_the_bank(consumer, client, feed_key, redis_url)
    assert not withdrawn & set(consumer.replica().values())

    for case_id in list(bank.cases):
        bank.withdraw(case_id)
    consumer.once()
    assert consumer.replica() == {}


def test_sigkill_mid_snapshot_and_mid_feed(
    consumer: Consumer, client: httpx.Client, bank: Bank, feed_key: str, redis_url: str
) -> None:
    cases = [bank.submit(pdq=3, phash=1) for _ in range(30)]
    # Killed after some snapshot pages were stored, before the swap.
    process = consumer.start("--page-size", "2")
    consumer.kill_when(process, lambda: "snapshot_page" in consumer.state())
    assert consumer.state().get("snapshot") == "1"
    assert consumer.replica() == {}, "nothing swapped in before the last page"

    for case_id in cases[:10]:
        bank.withdraw(case_id)
    for _ in range(10):
        bank.submit(pdq=1, phash=1)

    # Restarted: it resumes the snapshot, then follows the feed; killed in the feed.
    process = consumer.start("--page-size", "1")
    consumer.kill_when(process, lambda: "cursor" in consumer.state())
    assert "snapshot" not in consumer.state()
    consumer.once()
    assert_exactly_the_bank(consumer, client, feed_key, redis_url)

    # Killed in the middle of a long run of feed pages.
    before = consumer.state()["cursor"]
    for case_id in list(bank.cases)[:15]:
        bank.withdraw(case_id)
    process = consumer.start("--page-size", "1")
    consumer.kill_when(process, lambda: consumer.state().get("cursor") != before)
    consumer.once()
    assert_exactly_the_bank(consumer, client, feed_key, redis_url)


def test_random_changes_and_kills(
    consumer: Consumer, client: httpx.Client, bank: Bank, feed_key: str, redis_url: str
) -> None:
    rng = random.Random(66)
    for _ in range(6):
        for _ in range(rng.randint(1, 8)):
            bank.submit(pdq=rng.randint(1, 3), phash=rng.randint(0, 1))
        for case_id in rng.sample(list(bank.cases), k=rng.randint(0, len(bank.cases) // 2)):
            bank.withdraw(case_id)
        process = consumer.start("--page-size", str(rng.choice([1, 2, 5])))
        time.sleep(rng.uniform(1.2, 2.5))  # about the start-up time: anywhere in the sync
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    consumer.once()
    assert_exactly_the_bank(consumer, client, feed_key, redis_url)


@pytest.fixture
def short_stream_service(settings: Settings, redis_url: str) -> Iterator[LiveService]:
    live = start_service(settings.model_copy(update={"change_stream_retention": 10}), redis_url)
    yield live
    live.stop()


def test_resync_after_the_cursor_expired(
    tmp_path: Path,
    short_stream_service: LiveService,
    settings: Settings,
    redis_url: str,
    platform_redis: str,
) -> None:
    key = make_platform_key(settings, redis_url, "feed")
    with httpx.Client(base_url=short_stream_service.url, timeout=30) as client:
        bank = Bank(client)
        consumer = Consumer(tmp_path, short_stream_service.url, key, platform_redis)
        first = [bank.submit(pdq=2, phash=1) for _ in range(5)]
        consumer.once()
        assert_exactly_the_bank(consumer, client, key, redis_url)
        bank.withdraw(first[0])  # a withdrawal the consumer must not miss
        for _ in range(50):
            bank.submit(pdq=2, phash=1)
        for case_id in list(bank.cases)[:20]:
            bank.withdraw(case_id)
        expired = client.get(
            "/v1/hashes/feed",
            params={"cursor": consumer.state()["cursor"]},
            headers={"Authorization": f"Bearer {key}"},
        )
        assert expired.status_code == 410
        out = consumer.once()
        assert "taking a new snapshot" in out
        assert_exactly_the_bank(consumer, client, key, redis_url)


def test_export_and_import(consumer: Consumer, tmp_path: Path, bank: Bank, redis_url: str) -> None:
    for _ in range(4):
        bank.submit(pdq=2, phash=1)
    consumer.once()
    replica = ["--redis-url", consumer.replica_url]

    jsonl = hashsvc(tmp_path, "export", "--format", "jsonl", *replica)
    assert jsonl.returncode == 0, jsonl.stderr
    rows = [json.loads(line) for line in jsonl.stdout.splitlines()]
    assert all(set(row) == {"signal", "hash"} for row in rows)
    assert {(r["signal"], r["hash"]) for r in rows} == bank_pairs(redis_url)
    assert len(rows) == 12

    as_csv = hashsvc(tmp_path, "export", "--format", "csv", *replica)
    lines = as_csv.stdout.splitlines()
    assert lines[0] == "signal,hash"
    assert {tuple(line.split(",")) for line in lines[1:]} == bank_pairs(redis_url)

    on_host = hashsvc(tmp_path, "export", "--from-bank", "--format", "csv", REDIS_URL=redis_url)
    assert on_host.returncode == 0, on_host.stderr
    assert sorted(on_host.stdout.splitlines()) == sorted(lines)

    # Import into a replica: a hash list from elsewhere (upper-case hex is made canonical).
    listed = tmp_path / "list.csv"
    theirs = ("pdq", "f" * 32 + "0" * 32)
    listed.write_text(f"signal,hash\nPDQ,{theirs[1].upper()}\n{lines[1]}\n")
    imported = hashsvc(tmp_path, "import", str(listed), *replica)
    assert imported.returncode == 0, imported.stderr
    assert "imported 2" in imported.stdout
    again = hashsvc(tmp_path, "export", *replica)
    pairs = [tuple(json.loads(line).values()) for line in again.stdout.splitlines()]
    assert sorted(pairs) == sorted([*bank_pairs(redis_url), theirs]), "once each"
    assert theirs not in set(consumer.replica().values()), "kept apart from the synced bank"

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"signal": "pdq", "hash": "abc"}\n')
    refused = hashsvc(tmp_path, "import", str(bad), *replica)
    assert refused.returncode == 2
    assert "64 hex characters" in refused.stderr
