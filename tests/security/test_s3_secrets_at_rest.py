"""S3: no secret at rest, in the logs or in the audit log; withdrawn hashes leave no trace.

A real server on a private Redis (AOF on, RDB compression off so byte searches of the AOF's
RDB preamble are meaningful) runs a mixed workload at DEBUG: operator actions, cases, scans,
a decision, a job, withdrawals. Then every key and value in Redis, the AOF after a rewrite,
the server logs and the audit stream are searched for every issued secret, the pepper, and
the withdrawn cases' hashes. Vacuity guards: the same searches do find what must be there.
"""

from __future__ import annotations

import ast
import hashlib
import hmac
import io
import logging
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
import redis

import hashsvc
from hashsvc.config import Settings
from hashsvc.embedded import EmbeddedRedis
from hashsvc.store import keys
from tests.helpers import (
    PHOTOS,
    UNTHROTTLED,
    balanced_pdq,
    bearer,
    make_admin_key,
    reupload,
    upload,
)
from tests.live import start_service

SERVER_LOGGERS = ("hashsvc", "uvicorn", "uvicorn.error", "fastapi", "starlette", "workers")
PEPPER = "s3-pepper-" + "q7Zk2LmX9vT4"


def everything_in(client: redis.Redis) -> bytes:
    """Every key name and every value in Redis, read by type (DUMP would compress)."""
    out = io.BytesIO()
    for key in client.scan_iter(count=1000):
        out.write(key + b"\n")
        kind = client.type(key)
        parts: Any
        if kind == b"string":
            parts = [client.get(key)]
        elif kind == b"hash":
            parts = [x for pair in client.hgetall(key).items() for x in pair]
        elif kind == b"set":
            parts = list(client.smembers(key))
        elif kind == b"zset":
            parts = list(client.zrange(key, 0, -1))
        elif kind == b"list":
            parts = client.lrange(key, 0, -1)
        elif kind == b"stream":
            entries: list[tuple[bytes, dict[bytes, bytes]]] = cast(Any, client.xrange(key))
            parts = [x for _, fields in entries for p in fields.items() for x in p]
        else:
            raise AssertionError(f"unexpected Redis type {kind!r} for {key!r}")
        for part in parts:
            out.write(part + b"\n")
    return out.getvalue()


def rewrite_aof(client: redis.Redis) -> None:
    client.bgrewriteaof()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        info = client.info("persistence")
        if not info["aof_rewrite_in_progress"] and not info["aof_rewrite_scheduled"]:
            return
        time.sleep(0.05)
    raise AssertionError("AOF rewrite did not finish")


@pytest.fixture
def server_logs() -> Iterator[io.StringIO]:
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setLevel(logging.DEBUG)
    saved = {}
    for name in SERVER_LOGGERS:
        logger = logging.getLogger(name)
        saved[name] = logger.level
        logger.setLevel(logging.DEBUG)
        logger.addHandler(handler)
    yield buffer
    for name, level in saved.items():
        logging.getLogger(name).setLevel(level)
        logging.getLogger(name).removeHandler(handler)


def victim_case(rng: random.Random) -> list[dict[str, Any]]:
    """Hashes unique to one case (so a withdrawn case's hashes exist nowhere else)."""
    phash = [1] * 30 + [0] * 34
    rng.shuffle(phash)
    return [
        {"signal": "pdq", "hash": balanced_pdq(rng), "quality": 100},
        {"signal": "phash", "hash": int("".join(map(str, phash)), 2).to_bytes(8, "big").hex()},
    ]


def test_s3_no_secret_at_rest_in_logs_or_audit(tmp_path: Path, server_logs: io.StringIO) -> None:
    server = EmbeddedRedis(tmp_path / "redis", appendfsync="everysec").start()
    settings = Settings(
        redis_url=server.url, data_dir=tmp_path / "var", token_pepper=PEPPER, **UNTHROTTLED
    )
    api = start_service(settings, server.url)
    rng = random.Random(3)
    secrets: list[str] = [PEPPER]
    audited = 0
    try:
        with redis.Redis.from_url(server.url) as r:
            r.config_set("rdbcompression", "no")
        admin = make_admin_key(settings, server.url)
        secrets.append(admin)
        with httpx.Client(base_url=api.url, timeout=30) as client:
            as_admin = bearer(admin)
            created = [
                client.post("/v1/admin/platforms", json={"name": n}, headers=as_admin).json()
                for n in ("P1", "P2")
            ]
            p1, p2 = (c["key"]["api_key"] for c in created)
            pid1, pid2 = (c["platform_id"] for c in created)
            extra = client.post(
                f"/v1/admin/platforms/{pid1}/keys", json={"scopes": ["scan"]}, headers=as_admin
            ).json()
            revoked = client.delete(
                f"/v1/admin/platforms/{pid1}/keys/{extra['key_id']}", headers=as_admin
            )
            assert revoked.status_code == 204
            for action in ("disable", "enable"):
                done = client.post(f"/v1/admin/platforms/{pid2}/{action}", headers=as_admin)
                assert done.status_code == 200
            secrets += [p1, p2, extra["api_key"]]
            audited += 2 + 2 + 2

            cases = []
            for _ in range(25):
                hashes = victim_case(rng)
                response = client.post("/v1/cases", json={"hashes": hashes})
                assert response.status_code == 201, response.text
                body = response.json()
                cases.append((body["case_id"], body["secret"], hashes))
                secrets.append(body["secret"])
            audited += 25

            # Scans: five of them match a case each (hash-only), one image scan, one job.
            flag_ids = []
            for _, _, hashes in cases[:5]:
                scan = client.post("/v1/scan", json={"hashes": hashes[:1]}, headers=bearer(p1))
                assert scan.status_code == 200
                flag_ids += [m["flag_id"] for m in scan.json()["matches"]]
            assert len(flag_ids) == 5
            audited += 5
            decided = client.post(
                f"/v1/flags/{flag_ids[0]}/decision",
                json={"decision": "removed"},
                headers=bearer(p1),
            )
            assert decided.status_code == 200
            image = client.post("/v1/scan", files=upload(reupload("coffee")), headers=bearer(p2))
            assert image.status_code == 200
            job = client.post(
                "/v1/scan/jobs", files=upload(PHOTOS["chelsea"].read_bytes()), headers=bearer(p2)
            )
            assert job.status_code == 202
            audited += 2

            withdrawn, kept = cases[:20], cases[20:]
            for case_id, secret, _ in withdrawn:
                gone = client.delete(f"/v1/cases/{case_id}", headers=bearer(secret))
                assert gone.status_code == 204
                assert client.get(f"/v1/cases/{case_id}", headers=bearer(secret)).status_code == 404
            audited += 20
            for case_id, secret, _ in kept:
                assert client.get(f"/v1/cases/{case_id}", headers=bearer(secret)).status_code == 200
            audit = client.get("/v1/admin/audit", params={"limit": 100}, headers=as_admin).json()
    finally:
        api.stop()

    aof_files = [p for p in (tmp_path / "redis").rglob("*.aof*") if p.is_file()]
    before_rewrite = b"".join(p.read_bytes() for p in aof_files)
    with redis.Redis.from_url(server.url) as r:
        rewrite_aof(r)
        stored = everything_in(r)
        audit_raw = r.xrange(keys.AUDIT)
        verifiers = r.hkeys(keys.CREDENTIALS)
        kept_verifier = r.hget(keys.case(kept[0][0]), "secret_verifier")
    server.stop()
    aof = b"".join(p.read_bytes() for p in (tmp_path / "redis").rglob("*.aof*") if p.is_file())
    logs = server_logs.getvalue()

    # Secrets: nowhere at rest, in the logs, or in the audit log.
    for secret in secrets:
        assert secret.encode() not in stored
        assert secret.encode() not in aof
        assert secret not in logs
    # Stored verifiers are HMAC-SHA256 keyed by the domain and the pepper.
    key = b"hashsvc/v1/token-verifier" + PEPPER.encode()
    for token in (admin, p1, p2):
        assert hmac.new(key, token.encode(), hashlib.sha256).hexdigest().encode() in verifiers
    assert kept_verifier == hmac.new(key, kept[0][1].encode(), hashlib.sha256).hexdigest().encode()

    # Withdrawn hashes: gone from Redis and, after the rewrite, from the AOF (hex and bytes).
    for _, _, hashes in withdrawn:
        for item in hashes:
            for form in (item["hash"].encode(), bytes.fromhex(item["hash"])):
                assert form not in stored
                assert form not in aof
    # Vacuity guards: what must be there is found by the same searches, and the withdrawn
    # hashes were in the AOF's log until the rewrite.
    assert withdrawn[0][2][0]["hash"].encode() in before_rewrite
    assert kept[0][2][0]["hash"].encode() in stored
    assert kept[0][2][0]["hash"].encode() in aof
    assert kept_verifier is not None
    assert kept_verifier in aof
    assert "index replicas built" in logs  # the handler really saw the server's logs

    # The audit log: one entry per state-changing action, none carrying a secret or a hash.
    assert len(audit_raw) == audited
    assert len(audit["entries"]) == audited
    all_hashes = [item["hash"] for _, _, hashes in cases for item in hashes]
    for entry in audit["entries"]:
        assert entry["actor"]
        assert entry["action"]
        assert entry["object"]
        assert entry["request_id"]
        assert entry["time"] > 0
        text = repr(entry)
        assert not any(s in text for s in secrets)
        assert not any(h in text for h in all_hashes)
    actions = [e["action"] for e in audit["entries"]]
    assert actions.count("case.withdraw") == 20
    assert actions.count("flag.raise") == 5


SECRET_NAMES = ("secret", "verifier", "token", "api_key", "password", "pepper")


def _names(node: ast.expr) -> list[str]:
    if isinstance(node, ast.Name):
        return [node.id]
    if isinstance(node, ast.Attribute):
        return [node.attr]
    return []


def test_s3_secrets_are_compared_only_with_compare_digest() -> None:
    """Static check: no ==/!= comparison in hashsvc/ has a secret-named operand (constants
    in capitals, such as token kinds, are names of kinds, not secrets)."""
    root = Path(hashsvc.__file__).parent
    offenders = []
    checked = 0
    for path in root.rglob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Compare):
                continue
            if not any(isinstance(op, ast.Eq | ast.NotEq) for op in node.ops):
                continue
            checked += 1
            for operand in (node.left, *node.comparators):
                for name in _names(operand):
                    if name.isupper():
                        continue
                    if any(word in name.lower() for word in SECRET_NAMES):
                        offenders.append(f"{path.relative_to(root)}:{node.lineno} {name}")
    assert checked > 20  # the scan really looked at comparisons
    assert offenders == []
    security = (root / "security.py").read_text()
    assert "hmac.compare_digest" in security
