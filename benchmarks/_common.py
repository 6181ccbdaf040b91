"""Data generators and measurement helpers shared by the benchmarks.

Two kinds of codes, both returned as uint8 arrays of shape (n, bits // 8), the bytes of the
hex form, as :class:`hashsvc.index.HammingIndex` takes them:

- *random*: every bit independent and fair (the easy case for hash tables);
- *clustered*: like real perceptual hashes. Bits are biased (one in eight almost constant,
  as the DC-like coefficients of a DCT hash are; the others set with probabilities drawn
  uniformly from 0.25 to 0.75) and codes come in near-duplicate families (re-encodes, crops,
  resizes of one picture) with heavy-tailed sizes: Zipf with exponent 2, from single
  pictures to families of up to 5,000. Members sit about ``bits / 20`` flipped bits from
  their family's centre. At N = 1e7 pHash codes this gives about 30 codes within distance
  10 of a fresh query, i.e. about 3 per million: the README's measured figure for real
  pHash ("about two false candidates per upload against a million hashes").

Queries for clustered data are half near-duplicates of stored codes (``bits / 32`` flips on
average: they have matches, often a whole family) and half fresh codes from the same biased
law.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

U8 = NDArray[np.uint8]
U64 = NDArray[np.uint64]

_CHUNK = 1 << 20


def to_bytes(words: U64) -> U8:
    """Packed words (n, w) -> byte codes (n, 8 w), word k = bytes 8k..8k+7 big-endian."""
    n, w = words.shape
    return np.ascontiguousarray(words.astype(">u8")).view(np.uint8).reshape(n, 8 * w)


@dataclass(frozen=True)
class BitModel:
    """Independent bits; ``p_one`` (bits,) is each bit's probability of being one."""

    p_one: NDArray[np.float64]

    @classmethod
    def biased(cls, bits: int, rng: np.random.Generator) -> BitModel:
        p = rng.uniform(0.25, 0.75, size=bits)
        constant = rng.random(bits) < 1 / 8
        p[constant] = rng.choice([0.02, 0.98], size=int(constant.sum()))
        return cls(p)

    def sample(self, n: int, rng: np.random.Generator) -> U64:
        """``n`` codes as packed words (n, bits // 64)."""
        bits = self.p_one.shape[0]
        threshold = np.round(self.p_one * 65536).astype(np.uint32)
        out = np.empty((n, bits // 64), dtype=np.uint64)
        for start in range(0, n, _CHUNK):
            m = min(_CHUNK, n - start)
            ones = rng.integers(0, 65536, size=(m, bits), dtype=np.uint32) < threshold
            out[start : start + m] = np.packbits(ones, axis=1).view(">u8").astype(np.uint64)
        return out


def random_words(n: int, bits: int, rng: np.random.Generator) -> U64:
    """Uniformly random codes as packed words (n, bits // 64)."""
    return rng.integers(0, 2**64 - 1, size=(n, bits // 64), dtype=np.uint64, endpoint=True)


def flip_bits(words: U64, mean_flips: float, rng: np.random.Generator) -> U64:
    """Copy of ``words`` (n, w) with about Poisson(``mean_flips``) random bits flipped per row.

    Two flips landing on one word of one row count once (a cheap, vectorised approximation).
    """
    n, w = words.shape
    out = words.copy()
    rows = np.repeat(np.arange(n), rng.poisson(mean_flips, size=n))
    bits = rng.integers(0, 64 * w, size=rows.shape[0])
    flat = out.reshape(-1)
    cells = rows * w + bits // 64
    flat[cells] ^= np.left_shift(np.uint64(1), (bits % 64).astype(np.uint64))
    return out


def family_sizes(n: int, rng: np.random.Generator, cap: int = 5_000) -> NDArray[np.int64]:
    """Heavy-tailed family sizes (Zipf, exponent 2, at most ``cap``) adding up to ``n``."""
    sizes = np.minimum(rng.zipf(2.0, size=n), cap).astype(np.int64)
    cut = int(np.searchsorted(np.cumsum(sizes), n)) + 1
    sizes = sizes[:cut]
    sizes[-1] -= int(sizes.sum()) - n
    return sizes[sizes > 0]


def clustered_words(n: int, bits: int, rng: np.random.Generator) -> tuple[U64, BitModel]:
    """Biased codes in near-duplicate families, packed (n, bits // 64), shuffled."""
    model = BitModel.biased(bits, rng)
    sizes = family_sizes(n, rng)
    centres = model.sample(sizes.shape[0], rng)
    members = np.repeat(centres, sizes, axis=0)
    words = flip_bits(members, bits / 20, rng)
    return words[rng.permutation(n)], model


def make_data(
    kind: str, n: int, bits: int, n_queries: int, rng: np.random.Generator
) -> tuple[U8, U8]:
    """Stored codes (n, bits // 8) and queries (n_queries, bits // 8) of ``kind``."""
    if kind == "random":
        return to_bytes(random_words(n, bits, rng)), to_bytes(random_words(n_queries, bits, rng))
    words, model = clustered_words(n, bits, rng)
    near = n_queries // 2
    picks = words[rng.integers(0, n, size=near)]
    fresh = model.sample(n_queries - near, rng)
    queries = np.concatenate([flip_bits(picks, bits / 32, rng), fresh])
    return to_bytes(words), to_bytes(queries[rng.permutation(n_queries)])


def rss_bytes() -> int:
    """Resident set size of this process now (Linux /proc), in bytes."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def timed(fn: Callable[[], object]) -> float:
    """Wall seconds of one call."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def latencies(fn: Callable[[int], object], count: int, budget_s: float) -> NDArray[np.float64]:
    """Wall seconds of ``fn(i)`` for i = 0, 1, ... up to ``count`` calls or ``budget_s``.

    At least 5 calls are made (fewer only if ``count`` is smaller).
    """
    out: list[float] = []
    deadline = time.perf_counter() + budget_s
    for i in range(count):
        out.append(timed(lambda i=i: fn(i)))  # type: ignore[misc]
        if i >= 4 and time.perf_counter() > deadline:
            break
    return np.asarray(out)


def memory_bandwidth(rng: np.random.Generator, nbytes: int = 400_000_000) -> float:
    """Single-thread read bandwidth in bytes per second (best of 5 XOR reductions)."""
    data = random_words(nbytes // 8, 64, rng)[:, 0]
    np.bitwise_xor.reduce(data)
    best = min(timed(lambda: np.bitwise_xor.reduce(data)) for _ in range(5))
    return float(data.nbytes / best)
