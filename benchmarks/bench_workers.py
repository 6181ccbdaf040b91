"""Scan-worker throughput: image jobs/s and video frames/s for 1 and 2 worker processes on this
machine, and where a job's time goes (decode, hash, match, Redis commit).

Starts its own embedded Redis (AOF on, appendfsync always, as in production), loads a bank of
random PDQ/pHash hashes, queues jobs through the store (as the API does) and times real
``python -m workers --one`` processes until every job is done.

    python benchmarks/bench_workers.py [--quick] [--seed N] [--bank N] [--images N] [--videos N]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere
from fixtures.make_variants import VARIANTS, encode, load_photo, photo_paths
from fixtures.make_videos import long_clip
from hashsvc import jobs
from hashsvc.config import Settings
from hashsvc.embedded import EmbeddedRedis
from hashsvc.hashing import hash_image
from hashsvc.matching import Matcher, ReplicaSet
from hashsvc.media import decode_image
from hashsvc.models import HashEntry, JobStatus, Platform
from hashsvc.platforms import register_platform
from hashsvc.signals import SIGNALS
from hashsvc.store import Store

T = TypeVar("T")
CASE_SIZE = 1000


def timed(function: Callable[[], T], repeat: int) -> tuple[T, float]:
    """The result and the median seconds of ``repeat`` calls."""
    times = []
    result = function()
    for _ in range(repeat):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return result, statistics.median(times)


async def load_bank(store: Store, size: int, rng: np.random.Generator) -> None:
    """``size`` random cases' worth of hashes, in cases of CASE_SIZE hashes per signal."""
    for start in range(0, size, CASE_SIZE):
        count = min(CASE_SIZE, size - start)
        entries = [
            HashEntry(name, rng.integers(0, 256, signal.bits // 8, dtype=np.uint8).tobytes())
            for name, signal in SIGNALS.items()
            for _ in range(count)
        ]
        await store.cases.create(f"case_bench{start:017d}", "x", entries)


def uploads(count: int) -> list[bytes]:
    photos = [load_photo(p).convert("RGB") for p in photo_paths()]
    variants = list(VARIANTS.values())
    return [
        encode(variants[i % len(variants)](photos[i % len(photos)]).convert("RGB"), "JPEG")
        for i in range(count)
    ]


async def stage_times(store: Store, settings: Settings, data: bytes) -> dict[str, float]:
    """Median seconds per stage for one image upload."""
    limits = {"max_bytes": settings.max_upload_bytes, "max_pixels": settings.max_image_pixels}
    image, decode_s = timed(lambda: decode_image(data, **limits), 20)
    hashes, hash_s = timed(lambda: hash_image(image), 20)
    replicas = ReplicaSet(store.changes, SIGNALS)
    await replicas.bootstrap()
    matcher = Matcher(replicas, store.changes, settings, store.cases.signals)
    entries = [HashEntry(h.signal, h.code) for h in hashes]
    match_times = []
    for _ in range(20):
        start = time.perf_counter()
        await matcher.match(entries)
        match_times.append(time.perf_counter() - start)
    redis_times = []
    for _ in range(20):  # the round trips of a commit: a Lua call writing a result hash
        start = time.perf_counter()
        await store.redis.hset("bench:commit", mapping={"status": "done", "result": "{}"})
        await store.redis.delete("bench:commit")
        redis_times.append(time.perf_counter() - start)
    return {
        "decode": decode_s,
        "hash (pdq+phash)": hash_s,
        "match": statistics.median(match_times),
        "redis write": statistics.median(redis_times),
    }


async def enqueue_all(
    store: Store, settings: Settings, platform: Platform, blobs: list[bytes]
) -> list[str]:
    queued = [await jobs.enqueue(platform, settings, store, data=b, uri=None) for b in blobs]
    return [job.job_id for job in queued]


async def wait_done(store: Store, job_ids: list[str]) -> None:
    remaining = set(job_ids)
    while remaining:
        for job_id in list(remaining):
            job = await store.jobs.get(job_id)
            if job is not None and job.status in (JobStatus.DONE, JobStatus.FAILED):
                remaining.discard(job_id)
        await asyncio.sleep(0.05)


def start_workers(count: int, redis_url: str) -> list[subprocess.Popen[bytes]]:
    env = {**os.environ, "REDIS_URL": redis_url, "HASHSVC_WORKER_SWEEP_INTERVAL_S": "0.2"}
    return [
        subprocess.Popen(
            [sys.executable, "-m", "workers", "--one"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(count)
    ]


async def throughput(
    store: Store, settings: Settings, platform: Platform, blobs: list[bytes], workers: int
) -> float:
    """Seconds for ``workers`` processes to finish every blob (after they are ready)."""
    processes = start_workers(workers, settings.redis_url or "")
    try:
        await asyncio.sleep(3.0)  # imports and replica bootstrap, not part of the figure
        start = time.perf_counter()
        await wait_done(store, await enqueue_all(store, settings, platform, blobs))
        return time.perf_counter() - start
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait()


async def run(args: argparse.Namespace, redis_url: str, workdir: Path) -> None:
    settings = Settings(redis_url=redis_url)
    store = Store.open(redis_url)
    try:
        rng = np.random.default_rng(args.seed)
        await load_bank(store, args.bank, rng)
        platform = (await register_platform("bench", settings, store)).platform
        blobs = uploads(args.images)
        print(
            f"bank: {args.bank} hashes per signal; {args.images} image jobs; "
            f"{args.videos} videos; seed {args.seed}"
        )
        print("\nwhere one image job's time goes (median, in-process):")
        stages = await stage_times(store, settings, blobs[0])
        total = sum(stages.values())
        for name, seconds in stages.items():
            print(f"  {name:<18} {seconds * 1000:8.2f} ms  {100 * seconds / total:5.1f} %")
        clip = long_clip(workdir / "clip.mp4", seconds=args.video_seconds).read_bytes()
        print("\nthroughput (wall clock, jobs queued while the workers run):")
        for workers in (1, 2):
            seconds = await throughput(store, settings, platform, blobs, workers)
            print(f"  {workers} worker(s): {len(blobs) / seconds:7.1f} image jobs/s")
            seconds = await throughput(store, settings, platform, [clip] * args.videos, workers)
            frames = args.videos * args.video_seconds  # 1 frame per second is sampled
            print(
                f"  {workers} worker(s): {frames / seconds:7.1f} video frames/s "
                f"({args.videos} x {args.video_seconds:.0f} s clips at 320x240)"
            )
    finally:
        await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (CI smoke run)")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--bank", type=int, default=None, help="hashes per signal")
    parser.add_argument("--images", type=int, default=None)
    parser.add_argument("--videos", type=int, default=None)
    args = parser.parse_args()
    args.seed = args.seed if args.seed is not None else int(time.time()) % 100_000
    args.bank = args.bank or (10_000 if args.quick else 200_000)
    args.images = args.images or (40 if args.quick else 300)
    args.videos = args.videos or (2 if args.quick else 6)
    args.video_seconds = 10.0 if args.quick else 30.0
    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedRedis(Path(tmp) / "redis").start()
        try:
            asyncio.run(run(args, server.url, Path(tmp)))
        finally:
            server.stop()


if __name__ == "__main__":
    main()
