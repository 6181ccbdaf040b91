"""The cost of durability: case submissions per second through the real API with the embedded
Redis at ``appendfsync always`` (the default: a 201 means the case is on disk) against
``everysec`` (up to a second of acknowledged cases can be lost on power failure).

    python benchmarks/bench_durability.py [--quick] [--seconds S] [--clients N] [--seed N]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from hashsvc.config import Settings
from hashsvc.embedded import EmbeddedRedis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere
from tests.helpers import UNTHROTTLED, balanced_pdq
from tests.live import start_service  # the tests' in-process uvicorn server


def load(url: str, seconds: float, clients: int, seed: int) -> tuple[int, list[float]]:
    count, latencies, lock = [0], list[float](), threading.Lock()
    deadline = time.monotonic() + seconds

    def client(number: int) -> None:
        rng = random.Random(seed + number)
        with httpx.Client(base_url=url, timeout=10) as http:
            while time.monotonic() < deadline:
                body = {"hashes": [{"signal": "pdq", "hash": balanced_pdq(rng), "quality": 90}]}
                start = time.perf_counter()
                response = http.post("/v1/cases", json=body)
                elapsed = time.perf_counter() - start
                if response.status_code == 201:
                    with lock:
                        count[0] += 1
                        latencies.append(elapsed)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return count[0], latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    seconds = args.seconds or (3.0 if args.quick else 15.0)
    seed = args.seed if args.seed is not None else int(time.time()) % 100_000
    print(f"{args.clients} clients, {seconds:.0f} s per mode, seed {seed}")
    rates = {}
    for mode in ("always", "everysec"):
        with tempfile.TemporaryDirectory() as tmp:
            server = EmbeddedRedis(Path(tmp) / "redis", appendfsync=mode).start()
            settings = Settings(redis_url=server.url, data_dir=Path(tmp), **UNTHROTTLED)
            api = start_service(settings, server.url)
            try:
                count, latencies = load(api.url, seconds, args.clients, seed)
            finally:
                api.stop()
                server.stop()
        rates[mode] = count / seconds
        p99 = statistics.quantiles(latencies, n=100)[98] * 1000 if len(latencies) > 1 else 0.0
        print(f"  appendfsync {mode:<8} {rates[mode]:8.1f} cases/s   p99 {p99:6.1f} ms")
    print(f"  always / everysec: {rates['always'] / max(rates['everysec'], 1e-9):.2f}")


if __name__ == "__main__":
    main()
