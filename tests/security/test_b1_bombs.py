"""B1: decompression bombs and dimension/frame limits.

Each bomb of ``fixtures.hostile.bombs`` is refused from its headers with a 413 and a specific
``reason`` (``code`` is ``media_rejected`` for every media refusal), through the sync API of a
real ``hashsvc serve`` process (whose RSS is measured) and through the queue with real worker
processes. Animated files within the frame cap decode only their first frame.
"""

from __future__ import annotations

import io
import statistics
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

from fixtures import hostile
from hashsvc.config import Settings
from hashsvc.media import decode_image
from hashsvc.media.images import DEFAULT_MAX_FRAMES
from tests.helpers import bearer, make_platform, reupload, upload
from tests.security.served_api import ServedApi, children, rss_bytes
from tests.workers.conftest import Workers, wait_finished

pytestmark = pytest.mark.timeout(240)

MiB = 1024 * 1024
EXPECTED: dict[str, str] = {
    "png_1bit_20000": "too_many_pixels",
    "gif_huge_screen": "too_many_pixels",
    "jpeg_65500": "too_many_pixels",
    "png_ztxt_100mb": "metadata_too_large",
    "webp_16383": "too_many_pixels",
    "gif_5000_frames": "too_many_frames",
    "apng_5000_frames": "too_many_frames",
    "tiff_1000_pages": "too_many_frames",
}
ROUNDS = 5  # the set is sent this many times after a warm-up round
HANG_S = 2.0  # a generous bound that only catches hangs (the target p99 is 100 ms)


@pytest.fixture(scope="module")
def bomb_set() -> dict[str, bytes]:
    bombs = hostile.bombs()
    assert set(bombs) == set(EXPECTED)
    return bombs


@pytest.fixture
def served(redis_url: str, tmp_path: Path) -> Iterator[ServedApi]:
    """The service with its default limits, in its own process."""
    api = ServedApi(redis_url, tmp_path / "serve")
    yield api
    api.stop()


def check_refusal(response: httpx.Response, name: str) -> None:
    assert response.status_code == 413, (name, response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert (error["code"], error["reason"]) == ("media_rejected", EXPECTED[name]), name
    assert error["message"]


def test_configured_pixel_limit_is_at_most_50_mp() -> None:
    assert Settings().max_image_pixels <= 50_000_000
    assert DEFAULT_MAX_FRAMES < 1_000  # so the 1,000-page TIFF is refused


def test_bombs_through_the_sync_api(
    served: ServedApi, settings: Settings, redis_url: str, bomb_set: dict[str, bytes]
) -> None:
    api_key = make_platform(settings, redis_url, "B1")
    with httpx.Client(base_url=served.url, headers=bearer(api_key), timeout=30) as http:
        photo = http.post("/v1/scan", files=upload(reupload("coffee")))
        assert photo.status_code == 200, photo.text
        for name, data in bomb_set.items():  # warm-up round
            check_refusal(http.post("/v1/scan", files=upload(data, name)), name)
        baseline = rss_bytes(served.pid)
        latencies: list[float] = []
        for _ in range(ROUNDS):
            for name, data in bomb_set.items():
                started = time.perf_counter()
                response = http.post("/v1/scan", files=upload(data, name))
                latencies.append(time.perf_counter() - started)
                check_refusal(response, name)
        growth = rss_bytes(served.pid) - baseline
        assert http.post("/v1/scan", files=upload(reupload("coffee"))).status_code == 200

    p50 = statistics.median(latencies)
    p99 = statistics.quantiles(latencies, n=100, method="inclusive")[98]
    decoders = {pid: rss_bytes(pid) // MiB for pid in children(served.pid)}
    print(
        f"\nB1 sync: {len(latencies)} bomb requests, p50 {p50 * 1000:.1f} ms, "
        f"p99 {p99 * 1000:.1f} ms, max {max(latencies) * 1000:.1f} ms; API RSS "
        f"{baseline / MiB:.1f} MB, growth {growth / MiB:+.2f} MB; decoder RSS (MB) {decoders}"
    )
    assert max(latencies) < HANG_S
    assert growth <= 20 * MiB
    assert served.alive()


def test_bombs_through_the_queue(
    client: httpx.Client, api_key: str, workers: Workers, bomb_set: dict[str, bytes]
) -> None:
    worker = workers.start()
    jobs = {}
    for name, data in bomb_set.items():
        response = client.post("/v1/scan/jobs", files=upload(data, name), headers=bearer(api_key))
        assert response.status_code == 202, response.text
        jobs[name] = response.json()["job_id"]
    final = wait_finished(client, api_key, list(jobs.values()), timeout=90)
    for name, job_id in jobs.items():
        status = final[job_id]
        assert status["status"] == "failed", (name, status)
        assert status["error"].startswith(f"{EXPECTED[name]}: "), (name, status["error"])
        assert status["attempts"] == 1  # a clean refusal is not retried
    assert worker.poll() is None


def _corrupt_gif_after_first_frame(data: bytes) -> bytes:
    """Every image descriptor but the first gets an invalid LZW code size (0xFF)."""
    out = bytearray(data)
    pos = 13 + (3 << ((out[10] & 7) + 1) if out[10] & 0x80 else 0)
    frame = 0
    while out[pos] in (0x21, 0x2C):
        if out[pos] == 0x2C:
            lct = 3 << ((out[pos + 9] & 7) + 1) if out[pos + 9] & 0x80 else 0
            code_size_at = pos + 10 + lct
            if frame:
                out[code_size_at] = 0xFF
            frame += 1
            pos = code_size_at + 1
        else:
            pos += 2
        while out[pos]:
            pos += 1 + out[pos]
        pos += 1
    assert frame > 1
    return bytes(out)


def _corrupt_apng_after_first_frame(data: bytes) -> bytes:
    """Every fdAT chunk (frames 2..n) gets garbage in place of its compressed data."""
    out = bytearray(data)
    pos, corrupted = 8, 0
    while pos < len(out):
        (length,) = struct.unpack(">I", out[pos : pos + 4])
        if out[pos + 4 : pos + 8] == b"fdAT" and length > 8:
            out[pos + 12 : pos + 8 + length] = b"\xa5" * (length - 4)
            corrupted += 1
        pos += 12 + length
    assert corrupted
    return bytes(out)


def _decode_last_frame(data: bytes) -> None:
    with Image.open(io.BytesIO(data)) as opened:
        opened.seek(getattr(opened, "n_frames", 1) - 1)
        opened.load()


@pytest.mark.parametrize(
    ("name", "make"),
    [
        ("gif", lambda: _corrupt_gif_after_first_frame(hostile.many_frames_gif(400))),
        ("apng", lambda: _corrupt_apng_after_first_frame(hostile.many_frames_apng(400))),
    ],
)
def test_animation_within_the_cap_decodes_only_its_first_frame(name: str, make: object) -> None:
    assert callable(make)
    data: bytes = make()
    with pytest.raises((OSError, SyntaxError, ValueError)):  # later frames cannot decode
        _decode_last_frame(data)
    started = time.perf_counter()
    image = decode_image(data, max_bytes=20 * MiB, max_pixels=50_000_000)
    elapsed = time.perf_counter() - started
    print(f"\nB1 {name} of 400 frames: first frame in {elapsed * 1000:.1f} ms")
    assert image.getpixel((0, 0)) == (0, 0, 0)  # frame 0 of _frames is black
    assert elapsed < 0.2
