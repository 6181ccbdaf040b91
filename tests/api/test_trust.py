"""Trust and safety on a real service and Redis: the allow-list bank (refusal at submission with
a neutral message, no flag from allow-listed content), the feedback loop (independent
platforms' not_violating decisions quarantine a hash), operators' API and CLI."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from hashsvc.config import Settings
from hashsvc.hashing import hash_bytes
from hashsvc.store import keys as store_keys
from tests.helpers import PHOTOS, bearer, make_platform, reupload, upload, victim_hashes


def submit(client: httpx.Client, hashes: list[dict[str, Any]]) -> httpx.Response:
    return client.post("/v1/cases", json={"hashes": hashes})


def scan_flags(client: httpx.Client, key: str, data: bytes) -> set[str]:
    response = client.post("/v1/scan", files=upload(data), headers=bearer(key))
    assert response.status_code == 200, response.text
    return {m["flag_id"] for m in response.json()["matches"]}


def actions(client: httpx.Client, admin_key: str) -> list[tuple[str, str, str]]:
    entries = client.get("/v1/admin/audit", params={"limit": 100}, headers=bearer(admin_key))
    return [(e["actor"], e["action"], e["object"]) for e in entries.json()["entries"]]


def test_allowlisted_image_is_refused_at_submission_and_never_flags(
    client: httpx.Client, settings: Settings, api_key: str, admin_key: str
) -> None:
    # A case banked before the allow-list entry (a poisoning attempt that got in first).
    early = submit(client, victim_hashes(PHOTOS["chelsea"], settings))
    assert early.status_code == 201
    early_id, early_secret = early.json()["case_id"], early.json()["secret"]
    assert scan_flags(client, api_key, reupload("chelsea"))  # it flags, for now

    image = PHOTOS["chelsea"].read_bytes()
    added = client.post(
        "/v1/admin/allowlist",
        params={"label": "public domain cat"},
        content=image,
        headers={**bearer(admin_key), "Content-Type": "image/jpeg"},
    )
    assert added.status_code == 201, added.text
    body = added.json()
    assert {e["signal"] for e in body["entries"]} == {"pdq", "phash"}
    assert len(body["quarantined"]) == 1  # the early case's PDQ hash, for an operator

    # The same picture's hashes, and a near-identical re-encode's: refused, neutrally.
    for hashes in (
        victim_hashes(PHOTOS["chelsea"], settings),
        [
            {"signal": h.signal, "hash": h.hex, "quality": h.quality}
            for h in hash_bytes(reupload("chelsea", "resize_half"), settings)
        ],
    ):
        refused = submit(client, hashes)
        assert refused.status_code == 422
        error = refused.json()["error"]
        assert error == {"code": "hash_not_accepted", "message": error["message"]}
        assert error["message"].endswith("this hash cannot be accepted")
        assert "allow" not in refused.text.lower()
    # Unrelated pictures are accepted; a mixed submission is refused as a whole.
    assert submit(client, victim_hashes(PHOTOS["rocket"], settings)).status_code == 201
    mixed = victim_hashes(PHOTOS["coffee"], settings) + victim_hashes(PHOTOS["chelsea"], settings)
    assert submit(client, mixed).status_code == 422

    # Scans of the allow-listed picture never flag (its early case is under review); an
    # unrelated case's scans still do.
    for variant in ("reencode_q60", "resize_half", "webp_q75", "png_roundtrip"):
        assert scan_flags(client, api_key, reupload("chelsea", variant)) == set()
    assert scan_flags(client, api_key, reupload("rocket"))
    early_status = client.get(f"/v1/cases/{early_id}", headers=bearer(early_secret)).json()
    assert early_status["status"] == "under review"
    [queued] = client.get("/v1/admin/quarantine", headers=bearer(admin_key)).json()["hashes"]
    assert (queued["reason"], queued["case_id"]) == ("allowlist", early_id)

    # Even an operator's release of the early hash does not make the allow-listed picture flag.
    ref = queued["hash_ref"]
    assert client.post(f"/v1/admin/quarantine/{ref}/release", headers=bearer(admin_key)).is_success
    assert scan_flags(client, api_key, reupload("chelsea")) == set()

    audit = actions(client, admin_key)
    assert ("allowlist", "hash.quarantine", ref) in audit
    assert sum(a == "allowlist.add" for _, a, _ in audit) == 2


def test_allowlist_json_add_list_remove(
    client: httpx.Client, settings: Settings, admin_key: str, api_key: str
) -> None:
    hashes = victim_hashes(PHOTOS["coffee"], settings)
    added = client.post(
        "/v1/admin/allowlist",
        json={"hashes": [{"signal": h["signal"], "hash": h["hash"]} for h in hashes]},
        headers=bearer(admin_key),
    )
    assert added.status_code == 201, added.text
    ids = [e["entry_id"] for e in added.json()["entries"]]
    listed = client.get("/v1/admin/allowlist", headers=bearer(admin_key)).json()["entries"]
    assert [e["entry_id"] for e in listed] == ids
    assert {e["hash"] for e in listed} == {h["hash"] for h in hashes}
    assert submit(client, hashes).status_code == 422
    assert client.get("/v1/admin/allowlist", headers=bearer(api_key)).status_code == 403

    for entry_id in ids:
        removed = client.delete(f"/v1/admin/allowlist/{entry_id}", headers=bearer(admin_key))
        assert removed.status_code == 204
    assert client.delete(f"/v1/admin/allowlist/{ids[0]}", headers=bearer(admin_key)).status_code
    assert submit(client, hashes).status_code == 201  # every process reloads its copy
    assert client.get("/v1/admin/allowlist", headers=bearer(admin_key)).json()["entries"] == []
    assert sum(a == "allowlist.remove" for _, a, _ in actions(client, admin_key)) == 2


def test_two_platforms_not_violating_quarantine_the_hash(
    client: httpx.Client, settings: Settings, redis_url: str, admin_key: str
) -> None:
    case = submit(client, victim_hashes(PHOTOS["astronaut"], settings)).json()
    unrelated = submit(client, victim_hashes(PHOTOS["rocket"], settings)).json()
    p1, p2 = (make_platform(settings, redis_url, name) for name in ("One", "Two"))

    def decide(key: str, flag_id: str, decision: str) -> None:
        response = client.post(
            f"/v1/flags/{flag_id}/decision", json={"decision": decision}, headers=bearer(key)
        )
        assert response.status_code == 200, response.text

    # One platform, twice: below the threshold of 2 platforms.
    for variant in ("reencode_q60", "resize_half"):
        [flag_id] = scan_flags(client, p1, reupload("astronaut", variant))
        decide(p1, flag_id, "not_violating")
    assert client.get("/v1/admin/quarantine", headers=bearer(admin_key)).json()["total"] == 0
    [rocket_flag] = scan_flags(client, p2, reupload("rocket"))
    decide(p2, rocket_flag, "removed")
    # A second platform changes its mind: removed, then not_violating: now 2 platforms.
    [flag_id] = scan_flags(client, p2, reupload("astronaut"))
    decide(p2, flag_id, "removed")
    assert client.get("/v1/admin/quarantine", headers=bearer(admin_key)).json()["total"] == 0
    decide(p2, flag_id, "not_violating")

    queue = client.get("/v1/admin/quarantine", headers=bearer(admin_key)).json()
    assert queue["total"] >= 1
    assert {h["reason"] for h in queue["hashes"]} == {"feedback"}
    assert {h["case_id"] for h in queue["hashes"]} == {case["case_id"]}
    history = client.get(
        f"/v1/admin/hashes/{queue['hashes'][0]['hash_ref']}", headers=bearer(admin_key)
    ).json()
    assert sorted(d["not_violating"] for d in history["decisions_by_platform"].values()) == [1, 2]
    assert sum(history["matches_by_platform"].values()) == 3
    assert ("feedback", "hash.quarantine", queue["hashes"][0]["hash_ref"]) in actions(
        client, admin_key
    )
    # No more flags from it; the victim's case is under review; the unrelated one is not.
    assert scan_flags(client, p1, reupload("astronaut", "webp_q75")) == set()
    status = client.get(f"/v1/cases/{case['case_id']}", headers=bearer(case["secret"])).json()
    assert status["status"] == "under review"
    other = client.get(
        f"/v1/cases/{unrelated['case_id']}", headers=bearer(unrelated["secret"])
    ).json()
    assert other["status"] == "active"

    stats = client.get("/v1/admin/stats", headers=bearer(admin_key))
    assert stats.status_code == 200, stats.text
    assert stats.json() == {
        "hashes": {"pdq": 2, "phash": 2},
        "cases": 2,
        "flags": {"decided": 4},
        "decisions": {"not_violating": 3, "removed": 1},
        "quarantined": queue["total"],
        "allowlisted": {"pdq": 0, "phash": 0},
    }


def test_withdrawal_drops_a_quarantined_hash_everywhere(
    client: httpx.Client, settings: Settings, redis_url: str, admin_key: str
) -> None:
    case = submit(client, victim_hashes(PHOTOS["astronaut"], settings)).json()
    for name in ("One", "Two"):
        key = make_platform(settings, redis_url, name)
        [flag_id] = scan_flags(client, key, reupload("astronaut"))
        client.post(
            f"/v1/flags/{flag_id}/decision",
            json={"decision": "not_violating"},
            headers=bearer(key),
        )
    [queued, *_] = client.get("/v1/admin/quarantine", headers=bearer(admin_key)).json()["hashes"]
    withdrawn = client.delete(f"/v1/cases/{case['case_id']}", headers=bearer(case["secret"]))
    assert withdrawn.status_code == 204
    assert client.get("/v1/admin/quarantine", headers=bearer(admin_key)).json()["total"] == 0
    gone = client.get(f"/v1/admin/hashes/{queued['hash_ref']}", headers=bearer(admin_key))
    assert gone.status_code == 404


@pytest.fixture
def cli_env(settings: Settings, redis_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HASHSVC_")}
    return {**env, "REDIS_URL": redis_url}


def hashsvc(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hashsvc", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_cli_quarantine_list_release_and_stats(
    client: httpx.Client,
    settings: Settings,
    redis_url: str,
    admin_key: str,
    cli_env: dict[str, str],
    tmp_path: Path,
) -> None:
    case = submit(client, victim_hashes(PHOTOS["astronaut"], settings)).json()
    keys = [make_platform(settings, redis_url, name) for name in ("One", "Two")]
    for key in keys:
        [flag_id] = scan_flags(client, key, reupload("astronaut"))
        client.post(
            f"/v1/flags/{flag_id}/decision",
            json={"decision": "not_violating"},
            headers=bearer(key),
        )
    listed = hashsvc(cli_env, "admin", "quarantine", "list")
    assert listed.returncode == 0, listed.stderr
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert rows
    assert {r["case_id"] for r in rows} == {case["case_id"]}
    assert {r["reason"] for r in rows} == {"feedback"}
    for row in rows:
        released = hashsvc(cli_env, "admin", "quarantine", "release", row["hash_ref"])
        assert released.returncode == 0, released.stderr
    again = hashsvc(cli_env, "admin", "quarantine", "release", rows[0]["hash_ref"])
    assert again.returncode != 0
    assert "not quarantined" in again.stderr
    assert scan_flags(client, keys[0], reupload("astronaut", "resize_half"))
    stats = hashsvc(cli_env, "admin", "stats")
    assert stats.returncode == 0, stats.stderr
    assert json.loads(stats.stdout)["quarantined"] == 0
    audit = actions(client, admin_key)
    assert {("cli", "hash.release", r["hash_ref"]) for r in rows} <= set(audit)


def recount(redis_url: str, platform_id: str) -> tuple[dict[str, int], dict[str, int]]:
    """A platform's flags per status and decision, by reading every flag."""
    statuses: dict[str, int] = {}
    decisions: dict[str, int] = {}
    with redis.Redis.from_url(redis_url, decode_responses=True) as r:
        for flag_id in r.zrange(store_keys.platform_flags(platform_id), 0, -1):
            status, decision = r.hmget(store_keys.flag(flag_id), ["status", "decision"])
            statuses[status] = statuses.get(status, 0) + 1
            decisions[decision] = decisions.get(decision, 0) + 1
    return statuses, decisions


def test_flag_counts_stay_exact_through_decisions_and_withdrawals(
    client: httpx.Client, settings: Settings, redis_url: str, admin_key: str
) -> None:
    rng = random.Random(7)
    names = ["astronaut", "rocket", "coffee", "chelsea"]
    cases = {n: submit(client, victim_hashes(PHOTOS[n], settings)).json() for n in names}
    keys = [make_platform(settings, redis_url, name) for name in ("One", "Two")]
    flags: list[tuple[str, str]] = []  # (platform key, flag id)
    variants = ["reencode_q60", "resize_half", "webp_q75"]
    for step in range(40):
        action = rng.random()
        if action < 0.5 or not flags:
            key, name = rng.choice(keys), rng.choice(names)
            found = scan_flags(client, key, reupload(name, variants[step % len(variants)]))
            flags += [(key, f) for f in found]
        elif action < 0.9:
            key, flag_id = rng.choice(flags)
            decision = rng.choice(["removed", "not_violating", "needs_more_info"])
            response = client.post(
                f"/v1/flags/{flag_id}/decision", json={"decision": decision}, headers=bearer(key)
            )
            assert response.status_code in (200, 409), response.text  # 409: withdrawn
        elif cases:
            name = rng.choice(sorted(cases))
            case = cases.pop(name)
            names.remove(name)
            withdrawn = client.delete(
                f"/v1/cases/{case['case_id']}", headers=bearer(case["secret"])
            )
            assert withdrawn.status_code in (200, 204)
    listed = client.get("/v1/admin/platforms", headers=bearer(admin_key)).json()["platforms"]
    assert len(listed) == 2
    total_statuses: dict[str, int] = {}
    for platform in listed:
        statuses, decisions = recount(redis_url, platform["platform_id"])
        assert platform["flags"] == {"statuses": statuses, "decisions": decisions}
        for status, count in statuses.items():
            total_statuses[status] = total_statuses.get(status, 0) + count
    assert sum(total_statuses.values()) == len(flags) > 0
    assert len(total_statuses) >= 2, total_statuses  # the sequence did change statuses
    stats = client.get("/v1/admin/stats", headers=bearer(admin_key)).json()
    assert stats["flags"] == total_statuses
