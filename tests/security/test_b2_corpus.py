"""B2: the hostile-file corpus (``fixtures.hostile_corpus``) against a real ``hashsvc serve``.

The server runs with a ``PATH`` whose only ``gs`` is a tripwire script (it records that it ran):
Ghostscript must never be reached. Every answer is checked against the sample's expectation
(see the corpus module): refusals are 4xx JSON with a code, wrapped images hash as the clean
image, mutants are refused or genuinely decodable; never a 5xx, never a slow answer, and the
server process is the same at the end.
"""

from __future__ import annotations

import collections
import io
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

from fixtures.hostile_corpus import Sample, corpus
from hashsvc.config import Settings
from hashsvc.hashing import hash_bytes
from tests.helpers import bearer, make_platform, reupload, upload
from tests.security.served_api import ServedApi

pytestmark = pytest.mark.timeout(180)

SLOW_S = 2.0
QUOTAS_OFF = {  # this test sends hundreds of scans from one key and one address
    "HASHSVC_SCAN_RATE_PER_S": "1000000",
    "HASHSVC_SCAN_BURST": "1000000",
}


@pytest.fixture(scope="module")
def samples() -> list[Sample]:
    return corpus()


@pytest.fixture
def tripwire(tmp_path: Path) -> Path:
    """A directory holding a fake ``gs`` that writes ``gs-ran`` next to it when run."""
    bin_dir = tmp_path / "tripwire-bin"
    bin_dir.mkdir()
    gs = bin_dir / "gs"
    gs.write_text(f'#!/bin/sh\necho "$@" >> {bin_dir / "gs-ran"}\nexit 1\n')
    gs.chmod(0o755)
    return bin_dir


def path_without_gs(tripwire: Path) -> str:
    """The tripwire directory, the interpreter's, then every PATH entry without a ``gs``."""
    entries = [str(tripwire), str(Path(sys.executable).parent)]
    entries += [d for d in os.environ.get("PATH", "").split(os.pathsep) if d and d not in entries]
    return os.pathsep.join(d for d in entries if d == str(tripwire) or not Path(d, "gs").exists())


@pytest.fixture
def served(redis_url: str, tmp_path: Path, tripwire: Path) -> Iterator[ServedApi]:
    env = {"PATH": path_without_gs(tripwire), **QUOTAS_OFF}
    api = ServedApi(redis_url, tmp_path / "serve", env=env)
    yield api
    api.stop()


def decodes_fully(data: bytes) -> bool:
    """Whether plain Pillow decodes the bytes without error (the reference for mutants)."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
    except Exception:  # any failure means "not a decodable image"
        return False
    return True


def check(sample: Sample, response: httpx.Response, settings: Settings) -> str:
    """Assert the answer fits the sample's expectation; returns an outcome label."""
    status = response.status_code
    assert status < 500, (sample.name, status, response.text)
    if status >= 400:
        assert response.headers["content-type"].startswith("application/json"), sample.name
        error = response.json()["error"]
        assert error["code"], sample.name
        assert error["message"], sample.name
        assert sample.expect != "image", (sample.name, response.text)
        if sample.reason is not None:
            assert error.get("reason") == sample.reason, (sample.name, error)
        return f"{status} {error['code']}/{error.get('reason', '-')}"
    assert status == 200, (sample.name, status)
    assert sample.expect != "reject", (sample.name, response.text)
    hashes = [h["hash"] for h in response.json()["hashes"]]
    if sample.expect == "image":
        assert sample.clean is not None
        assert hashes == [h.hex for h in hash_bytes(sample.clean, settings)], sample.name
    else:
        assert decodes_fully(sample.data), sample.name
    return "200 hashed"


def test_hostile_corpus(
    served: ServedApi, settings: Settings, redis_url: str, samples: list[Sample], tripwire: Path
) -> None:
    assert len(samples) >= 200
    pid = served.pid
    api_key = make_platform(settings, redis_url, "B2")
    outcomes: collections.Counter[str] = collections.Counter()
    by_group: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    slowest = 0.0
    with httpx.Client(base_url=served.url, headers=bearer(api_key), timeout=30) as http:
        # Untimed: the first scan starts the sandboxed decoders and loads the hashers.
        assert http.post("/v1/scan", files=upload(reupload("chelsea"))).status_code == 200
        for sample in samples:
            headers = {"content-type": sample.content_type} if sample.content_type else {}
            started = time.perf_counter()
            response = http.post("/v1/scan", content=sample.data, headers=headers)
            elapsed = time.perf_counter() - started
            slowest = max(slowest, elapsed)
            assert elapsed < SLOW_S, (sample.name, elapsed)
            outcome = check(sample, response, settings)
            outcomes[outcome] += 1
            by_group[sample.expect][outcome.split()[0]] += 1
            if sample.name.startswith("disallowed-eps"):
                assert response.json()["error"]["reason"] == "unsupported_format"
        assert http.get("/healthz").status_code == 200

    print(f"\nB2: {len(samples)} files, slowest answer {slowest * 1000:.0f} ms")
    for outcome, count in sorted(outcomes.items()):
        print(f"  {count:4d} x {outcome}")
    print(f"  by expectation: { {k: dict(v) for k, v in by_group.items()} }")
    assert not any(outcome.startswith("5") for outcome in outcomes)
    assert served.alive()
    assert served.pid == pid
    assert not (tripwire / "gs-ran").exists(), "Ghostscript was invoked"
    assert "Traceback" not in served.logs()
