"""R1: acknowledged submissions survive Redis crashes and restarts (Protocol B).

Eight clients submit cases through the real API while a nemesis SIGKILLs Redis and restarts it
on the same data directory (once right after BGREWRITEAOF, once with a clean shutdown). Every
201 goes to a ledger; afterwards every acknowledged case must be there, whole, and match. No
case may be partial. The negative control runs the same with AOF off and must lose cases: a
durability test that cannot fail proves nothing."""

from __future__ import annotations

import random
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import redis

from hashsvc.config import Settings
from hashsvc.embedded import EmbeddedRedis
from hashsvc.store import keys
from tests.helpers import UNTHROTTLED, balanced_pdq, bearer, make_platform
from tests.live import start_service

HASHES_PER_CASE = 3
SCAN_SAMPLE_EVERY = 20


@dataclass
class History:
    acknowledged: list[tuple[str, str, list[str]]] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    indeterminate: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def submitter(url: str, seed: int, stop: threading.Event, history: History) -> None:
    rng = random.Random(seed)
    with httpx.Client(base_url=url, timeout=5) as client:
        while not stop.is_set():
            hashes = [balanced_pdq(rng) for _ in range(HASHES_PER_CASE)]
            body = {"hashes": [{"signal": "pdq", "hash": h, "quality": 90} for h in hashes]}
            try:
                response = client.post("/v1/cases", json=body)
            except httpx.TransportError:
                with history.lock:
                    history.indeterminate += 1
                continue
            with history.lock:
                history.statuses[response.status_code] += 1
                if response.status_code == 201:
                    created = response.json()
                    history.acknowledged.append((created["case_id"], created["secret"], hashes))
                elif response.status_code >= 500:
                    history.indeterminate += 1
            if response.status_code == 503:
                time.sleep(0.05)


def nemesis(server: EmbeddedRedis, cycles: int, spacing_s: float, log: list[str]) -> None:
    rng = random.Random(7)
    for cycle in range(cycles):
        time.sleep(rng.uniform(0.7 * spacing_s, 1.3 * spacing_s))
        if cycle == cycles - 1:
            server.stop()
            log.append("clean shutdown")
        else:
            if cycle == 1:
                with redis.Redis(unix_socket_path=str(server.socket_path)) as r:
                    r.bgrewriteaof()
                log.append("kill during BGREWRITEAOF")
            else:
                log.append("kill")
            server.kill()
        time.sleep(rng.uniform(0.5, 1.5))
        server.start()


def run_protocol(tmp_path: Path, *, appendonly: bool, seconds: float, cycles: int) -> History:
    server = EmbeddedRedis(tmp_path / "redis", appendfsync="always", appendonly=appendonly)
    server.start()
    settings = Settings(redis_url=server.url, data_dir=tmp_path / "var", **UNTHROTTLED)
    api = start_service(settings, server.url)
    history, stop, log = History(), threading.Event(), list[str]()
    clients = [
        threading.Thread(target=submitter, args=(api.url, seed, stop, history)) for seed in range(8)
    ]
    chaos = threading.Thread(target=nemesis, args=(server, cycles, seconds / (cycles + 1), log))
    try:
        for thread in [*clients, chaos]:
            thread.start()
        chaos.join()
        time.sleep(seconds / (cycles + 1))
        stop.set()
        for thread in clients:
            thread.join()
        history.statuses[0] = len(log)  # faults injected, for the report
        check_no_partial_cases(server.url)
        lost = count_lost(api.url, history, settings, server.url)
        history.statuses[-1] = lost
    finally:
        api.stop()
        server.stop()
    return history


def check_no_partial_cases(redis_url: str) -> None:
    with redis.Redis.from_url(redis_url, decode_responses=True) as r:
        for key in r.scan_iter(match=keys.case("*"), count=1000):
            if key.count(":") != 3:  # case:{id}:hashes and the like
                continue
            case_id = key.rsplit(":", 1)[1]
            hash_ids = r.hkeys(keys.case_hashes(case_id))
            assert len(hash_ids) == HASHES_PER_CASE, f"partial case {case_id}"
            owners = r.hmget(keys.BANK_OWNER, hash_ids)
            assert owners == [case_id] * HASHES_PER_CASE, f"partial bank for {case_id}"


def count_lost(url: str, history: History, settings: Settings, redis_url: str) -> int:
    """Acknowledged cases that are gone or incomplete (through the API, with their secrets),
    whose hashes left the bank, or (on a sample: every scan writes a flag) no longer match."""
    api_key = make_platform(settings, redis_url, "Checker")
    lost = set()
    with (
        httpx.Client(base_url=url, timeout=10) as client,
        redis.Redis.from_url(redis_url, decode_responses=True) as r,
    ):
        banked = set(r.hvals(keys.bank("pdq")))
        for number, (case_id, secret, hashes) in enumerate(history.acknowledged):
            status = client.get(f"/v1/cases/{case_id}", headers=bearer(secret))
            if (
                status.status_code != 200
                or status.json()["hashes"] != {"pdq": HASHES_PER_CASE}
                or not banked.issuperset(hashes)
            ):
                lost.add(case_id)
            elif number % SCAN_SAMPLE_EVERY == 0:
                probe = {"hashes": [{"signal": "pdq", "hash": hashes[0]}]}
                scan = client.post("/v1/scan", json=probe, headers=bearer(api_key))
                if not scan.json()["matched"]:
                    lost.add(case_id)
    return len(lost)


def report(name: str, history: History) -> dict[str, Any]:
    figures = {
        "acknowledged": len(history.acknowledged),
        "lost": history.statuses[-1],
        "indeterminate": history.indeterminate,
        "faults": history.statuses[0],
        "responses": {k: v for k, v in history.statuses.items() if k > 0},
    }
    print(f"\n{name}: {figures}", file=sys.stderr)
    return figures


def test_r1_acknowledged_cases_survive_redis_crashes(tmp_path: Path, full_chaos: bool) -> None:
    seconds, cycles = (60.0, 8) if full_chaos else (20.0, 5)
    figures = report("R1", run_protocol(tmp_path, appendonly=True, seconds=seconds, cycles=cycles))

    assert figures["faults"] == cycles  # vacuity guard: every fault was injected
    assert figures["acknowledged"] >= (1000 if full_chaos else 300)
    assert figures["lost"] == 0
    assert 500 not in figures["responses"]
    assert figures["responses"].get(503, 0) > 0  # the faults hit requests in flight


def test_r1_negative_control_without_aof_loses_cases(tmp_path: Path) -> None:
    figures = report(
        "R1 negative control", run_protocol(tmp_path, appendonly=False, seconds=6.0, cycles=2)
    )
    assert figures["acknowledged"] > 0
    assert figures["lost"] > 0


def test_production_mode_refuses_redis_without_aof(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path / "redis", appendonly=False).start()
    env = {"REDIS_URL": server.url, "HASHSVC_PRODUCTION": "true", "PATH": "/usr/bin:/bin"}
    try:
        results = [
            subprocess.run(
                [sys.executable, "-m", *command],
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            for command in (["hashsvc", "serve", "--port", "0"], ["workers", "--one"])
        ]
    finally:
        server.stop()
    for result in results:
        assert result.returncode == 2, result.stderr
        assert "append-only persistence" in result.stderr
        assert "Traceback" not in result.stderr
