"""Admission control on a real server: past the decode limit an image scan is refused at once
(503 + Retry-After, nothing queued), counted once its body has arrived, and served again as
soon as a slot frees."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from fixtures.make_variants import encode, load_photo
from hashsvc.config import Settings
from tests.helpers import PHOTOS, UNTHROTTLED, bearer, make_platform, reupload, upload
from tests.live import LiveService, start_service


@pytest.fixture
def one_decode(redis_url: str, tmp_path: Path) -> Iterator[tuple[LiveService, Settings]]:
    settings = Settings(
        redis_url=redis_url,
        data_dir=tmp_path / "var",
        max_concurrent_decodes=1,
        sandbox_processes=1,
        **UNTHROTTLED,
    )
    live = start_service(settings, redis_url)
    yield live, settings
    live.stop()


def test_a_second_decode_is_refused_at_once_then_served(
    one_decode: tuple[LiveService, Settings], redis_url: str
) -> None:
    live, settings = one_decode
    key = make_platform(settings, redis_url, "P")
    slow = encode(load_photo(PHOTOS["rocket"]).convert("RGB").resize((6000, 6000)), "JPEG")
    first: list[httpx.Response] = []

    def scan_slow() -> None:
        with httpx.Client(base_url=live.url, timeout=60) as client:
            first.append(client.post("/v1/scan", files=upload(slow), headers=bearer(key)))

    worker = threading.Thread(target=scan_slow)
    worker.start()
    with httpx.Client(base_url=live.url, timeout=60) as client:
        time.sleep(1.0)  # the slow upload's body has arrived: it holds the only decode slot
        assert worker.is_alive()
        started = time.monotonic()
        refused = client.post("/v1/scan", files=upload(reupload("coffee")), headers=bearer(key))
        assert refused.status_code == 503
        assert refused.json()["error"]["code"] == "overloaded"
        assert refused.headers["retry-after"] == "1"
        assert time.monotonic() - started < 0.5  # at once, not queued behind the slow one
        hashes_only = client.post(
            "/v1/scan",
            json={"hashes": [{"signal": "phash", "hash": "c3d3e3b3c1c19c9c"}]},
            headers=bearer(key),
        )
        assert hashes_only.status_code == 200  # hash scans need no decode slot
        worker.join(60)
        assert first[0].status_code == 200
        again = client.post("/v1/scan", files=upload(reupload("coffee")), headers=bearer(key))
        assert again.status_code == 200
