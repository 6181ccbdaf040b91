"""Tests for hashsvc.sandbox: sandboxed hashes are bit-identical to in-process ones; a crash,
a hang or a memory bomb in a child is reported as a clean error and the pool recovers."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from fixtures.hostile import decompression_bomb_png, truncated_jpeg
from fixtures.make_videos import standard_clip
from hashsvc.config import MiB, Settings
from hashsvc.errors import MediaRejected, MediaTooLarge
from hashsvc.hashing import hash_bytes, hash_media
from hashsvc.sandbox import SandboxError, SandboxLimits, SandboxOutOfMemory, SandboxPool
from tests.helpers import PHOTOS

SETTINGS = Settings(max_upload_bytes=4 * MiB)
LIMITS = SandboxLimits(memory_bytes=1024 * MiB, cpu_s=10, timeout_s=10.0)


# Tasks for the children: module-level, so a child imports them by name.
def abort_now() -> None:
    os.abort()


def sleep_for(seconds: float) -> str:
    time.sleep(seconds)
    return "woke up"


def allocate(size: int) -> int:
    return len(bytearray(size))


def reject(reason: str) -> None:
    raise MediaTooLarge(reason, f"rejected: {reason}")


def fail_unexpectedly() -> None:
    raise KeyError("surprise")


def child_pid() -> int:
    return os.getpid()


@pytest.fixture(scope="module")
def pool() -> Iterator[SandboxPool]:
    pool = SandboxPool(LIMITS, processes=2)
    yield pool
    pool.close()


@pytest.mark.parametrize("name", sorted(PHOTOS))
def test_photo_hashes_equal_in_process_hashes(pool: SandboxPool, name: str) -> None:
    data = PHOTOS[name].read_bytes()
    assert pool.hash_media(data, SETTINGS) == hash_media(data, SETTINGS)
    assert pool.hash_media(PHOTOS[name], SETTINGS) == hash_media(PHOTOS[name], SETTINGS)
    assert pool.run(hash_bytes, data, SETTINGS) == hash_bytes(data, SETTINGS)


def test_video_hashes_equal_in_process_hashes(pool: SandboxPool, tmp_path: Path) -> None:
    clip = standard_clip(tmp_path / "clip.mp4")
    expected = hash_media(clip, SETTINGS)
    assert expected.kind == "video"
    assert len(expected.frames) > 1
    assert pool.hash_media(clip, SETTINGS) == expected
    assert pool.hash_media(clip.read_bytes(), SETTINGS) == expected


def test_typed_errors_round_trip(pool: SandboxPool) -> None:
    with pytest.raises(MediaTooLarge) as raised:
        pool.run(reject, "too_many_pixels")
    assert (raised.value.reason, raised.value.message) == (
        "too_many_pixels",
        "rejected: too_many_pixels",
    )
    assert raised.value.status == 413
    corrupt = truncated_jpeg(PHOTOS["coffee"].read_bytes())
    with pytest.raises(MediaRejected) as rejected:
        pool.hash_media(corrupt, SETTINGS)
    assert rejected.value.reason == "corrupt"


def test_unexpected_error_is_a_retryable_sandbox_error(pool: SandboxPool) -> None:
    with pytest.raises(SandboxError, match="KeyError: 'surprise'"):
        pool.run(fail_unexpectedly)
    assert pool.run(sleep_for, 0) == "woke up"


def test_crash_is_reported_and_the_child_replaced(pool: SandboxPool) -> None:
    for _ in range(3):  # more crashes than children: every one is replaced
        with pytest.raises(MediaRejected) as crashed:
            pool.run(abort_now)
        assert crashed.value.reason == "decoder_crashed"
        assert "SIGABRT" in crashed.value.message
    assert pool.hash_media(PHOTOS["rocket"], SETTINGS) == hash_media(PHOTOS["rocket"], SETTINGS)


def test_timeout_kills_the_child_and_the_pool_recovers(pool: SandboxPool) -> None:
    pids = {pool.run(child_pid) for _ in range(4)}
    started = time.monotonic()
    with pytest.raises(MediaRejected) as timed_out:
        pool.run(sleep_for, 30, timeout_s=0.5)
    assert time.monotonic() - started < 5
    assert timed_out.value.reason == "decoder_timeout"
    assert "0.5 s" in timed_out.value.message
    assert pool.run(sleep_for, 0) == "woke up"
    assert not any(_alive(pid) for pid in pids - {pool.run(child_pid) for _ in range(4)})


def test_memory_bomb_fails_cleanly(pool: SandboxPool) -> None:
    with pytest.raises(SandboxOutOfMemory):
        pool.run(allocate, 8 * 1024 * MiB)
    assert pool.run(allocate, 10 * MiB) == 10 * MiB


def test_decompression_bomb_past_the_pixel_limit_hits_the_memory_limit(pool: SandboxPool) -> None:
    """With our pixel limit raised out of the way, the child's address-space limit (1 GiB
    here) stops a 169 Mpx bomb (20 KB of PNG, 507 MB as RGB)."""
    lax = Settings(max_upload_bytes=4 * MiB, max_image_pixels=2_000_000_000)
    with pytest.raises(SandboxOutOfMemory):
        pool.hash_media(decompression_bomb_png(13_000, 13_000), lax)
    assert pool.run(sleep_for, 0) == "woke up"


def test_concurrent_callers_from_threads(pool: SandboxPool) -> None:
    names = sorted(PHOTOS) * 2
    with ThreadPoolExecutor(max_workers=6) as executor:
        results = list(executor.map(lambda n: pool.hash_media(PHOTOS[n], SETTINGS), names))
    assert results == [hash_media(PHOTOS[n], SETTINGS) for n in names]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
