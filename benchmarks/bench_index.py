"""Benchmark hashsvc's HammingIndex against faiss IndexBinaryFlat and IndexBinaryMultiHash.

Exact Hamming range search (every stored code within ``r``), one thread, on uniformly
random and on clustered codes (see ``_common.py``). For each case it prints build time,
memory, single-query median and p99 latency and batch-of-1000 throughput per index, the
speed-ups over faiss, and a linear-scan bound (code bytes / this machine's single-thread
memory bandwidth). Every index's results are checked against IndexBinaryFlat (or, without
faiss, a numpy scan) and the run fails on any difference.

    python benchmarks/bench_index.py --quick     # CI smoke check, < 1 minute
    python benchmarks/bench_index.py             # full run (see benchmarks/README.md)

faiss is an optional benchmark dependency (``pip install -e '.[bench]'``), never a runtime
one; without it only HammingIndex is measured.
"""

from __future__ import annotations

import argparse
import importlib
import itertools
import math
import os
import platform
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import U8, latencies, make_data, memory_bandwidth, rss_bytes, timed

from hashsvc.index import HammingIndex

Result = set[tuple[int, int]]
"""One query's results as {(id, distance)}."""


@dataclass(frozen=True)
class Case:
    bits: int
    n: int
    radii: tuple[int, ...]


FULL: tuple[Case, ...] = (
    Case(64, 100_000, (8, 10)),
    Case(64, 1_000_000, (8, 10)),
    Case(64, 10_000_000, (8, 10)),
    Case(256, 100_000, (31,)),
    Case(256, 1_000_000, (31,)),
    Case(256, 4_000_000, (31,)),
)
QUICK: tuple[Case, ...] = (Case(64, 100_000, (8, 10)), Case(256, 50_000, (31,)))


@dataclass
class Options:
    quick: bool
    seed: int
    kinds: tuple[str, ...]
    queries: int
    batch: int
    budget: float
    max_n: int
    use_faiss: bool
    adds: int
    cases: tuple[Case, ...] = field(default=())
    bandwidth: float = math.nan


@dataclass
class Row:
    """Measurements of one index on one case and radius."""

    name: str
    build_s: float
    mem_bytes: int
    median_ms: float = math.nan
    p99_ms: float = math.nan
    batch_qps: float = math.nan
    batch_note: str = ""


class Contender:
    """An index under test: build once, then range-search."""

    name = "?"

    def build(self, ids: NDArray[np.int64], codes: U8) -> None:
        raise NotImplementedError

    def search(self, queries: U8, r: int) -> list[Result]:
        raise NotImplementedError

    def timed_search(self, queries: U8, r: int) -> None:
        self.search(queries, r)

    def memory(self, rss_growth: int) -> int:
        return rss_growth


class Ours(Contender):
    name = "HammingIndex"

    def __init__(self, bits: int, index: HammingIndex | None = None) -> None:
        self.index = index if index is not None else HammingIndex(bits)

    def build(self, ids: NDArray[np.int64], codes: U8) -> None:
        self.index.add(ids, codes)
        self.index.compact()

    def search(self, queries: U8, r: int) -> list[Result]:
        lims, ids, dists = self.index.search(queries, r)
        return [
            set(zip(ids[a:b].tolist(), dists[a:b].tolist(), strict=True))
            for a, b in itertools.pairwise(lims.tolist())
        ]

    def timed_search(self, queries: U8, r: int) -> None:
        self.index.search(queries, r)

    def memory(self, rss_growth: int) -> int:
        return self.index.nbytes


class FaissIndex(Contender):
    """A faiss binary index; ``range_search`` radius is exclusive, so it is given r + 1."""

    def __init__(self, faiss: Any, bits: int, n: int, multihash: bool) -> None:
        self.multihash = multihash
        if multihash:  # Norouzi's rule: substrings of about log2(n) bits
            self.b = min(24, max(8, round(math.log2(n))))
            self.nhash = bits // self.b
            self.index: Any = faiss.IndexBinaryMultiHash(bits, self.nhash, self.b)
            self.name = f"faiss MultiHash({self.nhash}x{self.b})"
        else:
            self.index = faiss.IndexBinaryFlat(bits)
            self.name = "faiss Flat"

    def build(self, ids: NDArray[np.int64], codes: U8) -> None:
        self.index.add(codes)  # ids are 0..n-1, the faiss row numbers
        self.code_bytes = codes.nbytes

    def memory(self, rss_growth: int) -> int:
        """Flat: exactly the code bytes. MultiHash: growth of the process RSS during the build,
        0 (printed n/a) when the allocator reused memory freed by an earlier case."""
        return self.code_bytes if not self.multihash else rss_growth

    def _run(self, queries: U8, r: int) -> tuple[Any, Any, Any]:
        if self.multihash:
            self.index.nflip = r // self.nhash  # pigeonhole: exact for this radius
        return self.index.range_search(queries, r + 1)  # type: ignore[no-any-return]

    def search(self, queries: U8, r: int) -> list[Result]:
        lims, dists, ids = self._run(queries, r)
        return [
            set(zip(ids[a:b].tolist(), dists[a:b].tolist(), strict=True))
            for a, b in itertools.pairwise(lims.tolist())
        ]

    def timed_search(self, queries: U8, r: int) -> None:
        self._run(queries, r)


def reference(codes: U8, queries: U8, r: int) -> list[Result]:
    """Exact results by a plain numpy scan (slow; for a few queries), ids = row numbers."""
    words = np.ascontiguousarray(codes).view(">u8").astype(np.uint64)
    out = []
    for q in np.ascontiguousarray(queries).view(">u8").astype(np.uint64):
        d = np.bitwise_count(words ^ q).sum(axis=1, dtype=np.int64)
        hit = np.flatnonzero(d <= r)
        out.append(set(zip(hit.tolist(), d[hit].tolist(), strict=True)))
    return out


def measure(c: Contender, queries: U8, r: int, opts: Options, row: Row) -> None:
    """Fill ``row`` with single-query latencies and batch throughput of ``c``."""
    c.timed_search(queries[:2], r)  # warm-up (lazy caches, page faults)
    lat = latencies(lambda i: c.timed_search(queries[i : i + 1], r), opts.queries, opts.budget)
    row.median_ms = float(np.median(lat) * 1e3)
    row.p99_ms = float(np.percentile(lat, 99) * 1e3)
    size = min(opts.batch, queries.shape[0])
    estimate = np.median(lat) * size
    if estimate > opts.budget * 2:  # too slow for a whole batch in the time budget
        size = max(10, int(size * opts.budget * 2 / estimate))
        row.batch_note = f"~{size}"
    row.batch_qps = size / timed(lambda: c.timed_search(queries[:size], r))


def build(c: Contender, codes: U8) -> Row:
    ids = np.arange(codes.shape[0], dtype=np.int64)
    before = rss_bytes()
    seconds = timed(lambda: c.build(ids, codes))
    return Row(c.name, seconds, c.memory(max(0, rss_bytes() - before)))


def check(name: str, got: list[Result], want: list[Result], case: str) -> None:
    bad = [i for i, (g, w) in enumerate(zip(got, want, strict=True)) if g != w]
    if bad:
        raise SystemExit(f"FAIL {case}: {name} differs from the reference on queries {bad[:10]}")


def contenders(faiss: Any, case: Case) -> list[Contender]:
    found: list[Contender] = [Ours(case.bits)]
    if faiss is not None:
        found += [FaissIndex(faiss, case.bits, case.n, multihash) for multihash in (False, True)]
    return found


def run_case(kind: str, case: Case, opts: Options, faiss: Any, rng: np.random.Generator) -> None:
    n_queries = max(opts.queries, opts.batch)
    codes, queries = make_data(kind, case.n, case.bits, n_queries, rng)
    indexes = contenders(faiss, case)
    rows = [build(c, codes) for c in indexes]
    n_check = 20 if opts.quick else 10
    for r in case.radii:
        label = f"{kind} {case.bits}-bit N={case.n:,} r={r}"
        flat = indexes[1] if faiss is not None else None
        want = flat.search(queries[:n_check], r) if flat else reference(codes, queries[:n_check], r)
        for c, row in zip(indexes, rows, strict=True):
            check(c.name, c.search(queries[:n_check], r), want, label)
            measure(c, queries, r, opts, row)
        hits = sum(len(w) for w in want) / n_check
        print_case(label, case, rows, hits, opts.bandwidth)


def print_case(label: str, case: Case, rows: list[Row], hits: float, bandwidth: float) -> None:
    raw = case.n * case.bits // 8
    bound_ms = raw / bandwidth * 1e3
    print(f"\n{label}   ({hits:.1f} results/query; scan bound {bound_ms:.2f} ms/query)")
    print(
        f"  {'index':<24}{'build s':>9}{'mem MB':>9}{'x raw':>7}{'median ms':>11}"
        f"{'p99 ms':>9}{'batch q/s':>11}{'median x':>10}{'batch x':>9}"
    )
    base = next((r for r in rows if r.name == "faiss Flat"), None)
    for row in rows:
        speed = base.median_ms / row.median_ms if base else math.nan
        batch = row.batch_qps / base.batch_qps if base else math.nan
        note = f" ({row.batch_note} queries)" if row.batch_note else ""
        mem = (
            f"{row.mem_bytes / 1e6:>9.1f}{row.mem_bytes / raw:>7.2f}"
            if row.mem_bytes
            else " " * 11 + "n/a"
        )
        print(
            f"  {row.name:<24}{row.build_s:>9.2f}{mem}{row.median_ms:>11.3f}{row.p99_ms:>9.3f}"
            f"{row.batch_qps:>11.0f}{speed:>10.1f}{batch:>9.1f}{note}"
        )
    budget = 3.5 * raw + 8 * case.n
    ours = rows[0].mem_bytes
    target = f"target 3.5 x codes + ids: {budget / 1e6:.1f} MB"
    print(f"  memory: HammingIndex {ours / 1e6:.1f} MB; {target}")
    sys.stdout.flush()


def run_adds(opts: Options, rng: np.random.Generator) -> None:
    """Amortised cost of adding 1,000 codes at a time to the largest 64-bit index."""
    n = max((c.n for c in opts.cases if c.bits == 64), default=100_000)
    codes, _ = make_data("random", n, 64, 0, rng)
    ours = Ours(64)
    ours.build(np.arange(n, dtype=np.int64), codes)
    new, queries = make_data("random", opts.adds * 1000, 64, 50, rng)
    batches = [
        (np.arange(n + i, n + i + 1000), new[i : i + 1000]) for i in range(0, len(new), 1000)
    ]
    start = time.perf_counter()
    per_add = [timed(lambda b=b: ours.index.add(*b)) for b in batches]  # type: ignore[misc]
    calls = time.perf_counter() - start
    ours.index.compact()  # wait for merges still running in the background
    total = time.perf_counter() - start
    probe = np.concatenate([new[::997][:25], queries[:25]])
    want = reference(np.concatenate([codes, new]), probe, 10)
    check("HammingIndex after adds", ours.search(probe, 10), want, "adds")
    print(
        f"\nadds: {opts.adds} x 1,000 codes into N={n:,} (64-bit): add() median "
        f"{np.median(per_add) * 1e3:.2f} ms, max {max(per_add) * 1e3:.1f} ms; amortised with "
        f"merges {total / opts.adds * 1e3:.1f} ms per 1,000 (calls {calls:.2f} s + waiting "
        f"for the last merge {total - calls:.2f} s); results exact after adds"
    )


def parse(argv: list[str] | None) -> Options:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--quick", action="store_true", help="small cases, correctness smoke check")
    p.add_argument("--seed", type=int, default=20_250_601)
    p.add_argument("--kinds", default="random,clustered")
    p.add_argument("--queries", type=int, default=None, help="single-query samples per index")
    p.add_argument("--batch", type=int, default=1000, help="batch size for throughput")
    p.add_argument("--budget", type=float, default=None, help="seconds per latency measurement")
    p.add_argument("--max-n", type=int, default=10**9, help="skip cases with more codes")
    p.add_argument("--cases", default="", help="only these cases, e.g. 64:10000000,256:4000000")
    p.add_argument("--no-faiss", action="store_true", help="measure HammingIndex only")
    p.add_argument("--adds", type=int, default=None, help="batches of 1,000 for the add test")
    a = p.parse_args(argv)
    quick = bool(a.quick)
    opts = Options(
        quick=quick,
        seed=a.seed,
        kinds=tuple(k for k in a.kinds.split(",") if k),
        queries=a.queries or (50 if quick else 300),
        batch=a.batch,
        budget=a.budget or (0.5 if quick else 3.0),
        max_n=a.max_n,
        use_faiss=not a.no_faiss,
        adds=a.adds or (20 if quick else 200),
    )
    wanted = {tuple(int(x) for x in c.split(":")) for c in a.cases.split(",") if c}
    opts.cases = tuple(
        c
        for c in (QUICK if quick else FULL)
        if c.n <= opts.max_n and (not wanted or (c.bits, c.n) in wanted)
    )
    return opts


def load_faiss(wanted: bool) -> Any:
    if not wanted:
        return None
    try:
        faiss = importlib.import_module("faiss")
    except ImportError:
        print("faiss not installed (pip install -e '.[bench]'): measuring HammingIndex only")
        return None
    faiss.omp_set_num_threads(1)
    return faiss


def header(opts: Options, faiss: Any) -> Iterator[str]:
    yield f"bench_index: {' '.join(sys.argv[1:]) or '(full run)'}"
    yield f"options: {opts}"
    yield f"seed: {opts.seed}"
    threads = "faiss not installed"
    if faiss is not None:
        threads = f"faiss {faiss.__version__}, omp_set_num_threads(1): one thread"
    yield f"python {platform.python_version()}, numpy {np.__version__}, {threads}"
    yield f"machine: {cpu_model()}, {os.cpu_count()} cores; HammingIndex is single-threaded"
    yield f"memory bandwidth (one thread, measured): {opts.bandwidth / 1e9:.1f} GB/s"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def main(argv: list[str] | None = None) -> int:
    opts = parse(argv)
    faiss = load_faiss(opts.use_faiss)
    rng = np.random.default_rng(opts.seed)
    opts.bandwidth = memory_bandwidth(rng, 100_000_000 if opts.quick else 400_000_000)
    for line in header(opts, faiss):
        print(line)
    started = time.perf_counter()
    for kind in opts.kinds:
        for case in opts.cases:
            run_case(kind, case, opts, faiss, rng)
    run_adds(opts, rng)
    print(f"\nall results exact; total {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
