"""Bit permutations that balance multi-index substrings on biased codes.

Real perceptual hashes have biased bits: some are almost constant, others split 30/70. A
substring made of low-entropy bits has crowded buckets, and probing it yields many
candidates. Hamming distance is invariant under a permutation of the bit positions applied
to every code and query, so a segment may store its codes permuted: :func:`balanced` learns,
from a sample, a permutation (within each 64-bit word) that gives every substring of a
layout about the same information, and leaves the least informative bits uncovered.
Searches stay exact whatever the permutation.

A bit's information is ``-log2(1 - m)``, ``m = 2 p (1 - p)`` being the chance that two codes
with bit probability ``p`` differ there; a substring's is the sum over its bits, so the
chance that two codes share the substring is ``2**-information``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

import numpy as np
from numpy.typing import NDArray

from hashsvc.index.mih import Substring

SAMPLE: Final = 1 << 16
"""Codes sampled to estimate the bit probabilities."""

MIN_GAIN: Final = 1.05
"""A learnt permutation is used only if it cuts the expected shared-substring count
(sum over substrings of ``2**-information``) by at least this factor."""

_CHUNK: Final = 1 << 16  # codes permuted at once (temporaries stay in cache)
_SMALL: Final = 256  # up to this many codes, permute all 16-bit chunks at once
_FEW: Final = 8  # up to this many words, permute Python ints
_CHUNK_SHIFTS: Final = np.arange(0, 64, 16, dtype=np.uint64)
_CHUNK_BASES: Final = np.arange(4, dtype=np.int64) << 16


@dataclass(frozen=True, slots=True)
class BitPermutation:
    """Bit ``j`` of word ``w`` of a permuted code is bit ``source[w, j]`` of word ``w``.

    Bits are numbered from the least significant (0) to the most significant (63).
    """

    source: NDArray[np.intp]  # (n_words, 64)
    _tables: NDArray[np.uint64] = field(repr=False)  # (n_words, 4, 65536): 16-bit chunks
    _byte_tables: tuple[tuple[tuple[int, ...], ...], ...] = field(repr=False)  # Python ints

    @classmethod
    def of(cls, source: NDArray[np.integer]) -> BitPermutation:
        """Permutation from ``source`` (n_words, 64), each row a permutation of 0..63."""
        src = np.asarray(source, dtype=np.intp)
        if (
            src.ndim != 2
            or src.shape[1] != 64
            or not all(np.array_equal(np.sort(row), np.arange(64)) for row in src)
        ):
            raise ValueError("source must have rows that are permutations of 0..63")
        values = np.arange(1 << 16, dtype=np.uint64)
        tables = np.zeros((src.shape[0], 4, 1 << 16), dtype=np.uint64)
        for w in range(src.shape[0]):
            for dest, bit in enumerate(src[w].tolist()):
                chunk, offset = divmod(bit, 16)
                moved = (values >> np.uint64(offset)) & np.uint64(1)
                tables[w, chunk] |= moved << np.uint64(dest)
        src.flags.writeable = False
        tables.flags.writeable = False
        low = np.arange(256, dtype=np.int64)
        byte_tables = tuple(
            tuple(
                tuple(int(x) for x in tables[w, byte // 2, low << (8 * (byte % 2))].tolist())
                for byte in range(8)
            )
            for w in range(src.shape[0])
        )
        return cls(src, tables, byte_tables)

    def _permute_int(self, value: int, word: int) -> int:
        """One word, as a Python int."""
        out = 0
        for byte, table in enumerate(self._byte_tables[word]):
            out |= table[(value >> (8 * byte)) & 0xFF]
        return out

    @property
    def inverse(self) -> BitPermutation:
        """The permutation that undoes this one."""
        return BitPermutation.of(np.argsort(self.source, axis=1))

    def apply(self, words: NDArray[np.uint64]) -> NDArray[np.uint64]:
        """Permuted copy of word-major codes ``words`` (n_words, n)."""
        n_words, n = words.shape
        if n <= _SMALL:
            return np.ascontiguousarray(self.apply_rows(np.ascontiguousarray(words.T)).T)
        out = np.empty((n_words, n), dtype=np.uint64)
        key = np.empty(min(n, _CHUNK), dtype=np.uint64)
        for w in range(n_words):
            tables = self._tables[w]
            for start in range(0, n, _CHUNK):
                row, dest = words[w, start : start + _CHUNK], out[w, start : start + _CHUNK]
                part = key[: row.shape[0]]
                for chunk in range(4):
                    np.right_shift(row, np.uint64(16 * chunk), out=part)
                    np.bitwise_and(part, np.uint64(0xFFFF), out=part)
                    if chunk == 0:
                        np.take(tables[0], part.view(np.int64), out=dest)
                    else:
                        dest |= tables[chunk].take(part.view(np.int64))
        return out

    def apply_rows(self, codes: NDArray[np.uint64]) -> NDArray[np.uint64]:
        """Permuted copy of row-major codes ``codes`` (q, n_words), e.g. packed queries."""
        q, n_words = codes.shape
        if q > _SMALL:
            return np.ascontiguousarray(self.apply(np.ascontiguousarray(codes.T)).T)
        if q * n_words <= _FEW:  # a few words: Python ints beat a few numpy calls
            return np.array(
                [[self._permute_int(int(v), w) for w, v in enumerate(row)] for row in codes],
                dtype=np.uint64,
            ).reshape(q, n_words)
        chunks = (codes[:, :, None] >> _CHUNK_SHIFTS) & np.uint64(0xFFFF)  # (q, n_words, 4)
        index = chunks.view(np.int64) + _CHUNK_BASES
        flat = self._tables.reshape(n_words, 4 << 16)
        moved = flat[np.arange(n_words)[:, None], index]
        out: NDArray[np.uint64] = np.bitwise_or.reduce(moved, axis=2)
        return out


def information(words: NDArray[np.uint64]) -> NDArray[np.float64]:
    """Per-bit information (n_words, 64) of a sample of word-major codes (n_words, n)."""
    n = words.shape[1]
    step = max(1, n // SAMPLE)
    sample = words[:, ::step]
    shifts = np.arange(64, dtype=np.uint64)
    ones = ((sample[:, :, None] >> shifts) & np.uint64(1)).sum(axis=1)
    p = ones / max(1, sample.shape[1])
    differ = 2.0 * p * (1.0 - p)
    info: NDArray[np.float64] = -np.log2(np.maximum(1.0 - differ, 1e-12))
    return info


def balanced(words: NDArray[np.uint64], layout: tuple[Substring, ...]) -> BitPermutation | None:
    """A permutation balancing the information of ``layout``'s substrings, or None if it
    gains less than :data:`MIN_GAIN` over the codes' own order.

    Within each word, bits are dealt, most informative first, to the substring with the
    least information so far that still has room; the least informative are left over
    for the bits no substring covers.
    """
    if not layout or words.shape[1] < 2:
        return None
    info = information(words)
    source = np.tile(np.arange(64, dtype=np.intp), (words.shape[0], 1))
    before = after = 0.0
    for w in range(words.shape[0]):
        subs = [s for s in layout if s.word == w]
        if not subs:
            continue
        before += sum(2.0 ** -float(info[w, s.shift : s.shift + s.length].sum()) for s in subs)
        dealt: list[list[int]] = [[] for _ in subs]
        totals = [0.0 for _ in subs]
        order = np.argsort(-info[w], kind="stable").tolist()
        covered = sum(s.length for s in subs)
        for bit in order[:covered]:
            room = [i for i, s in enumerate(subs) if len(dealt[i]) < s.length]
            i = min(room, key=lambda i: totals[i])
            dealt[i].append(bit)
            totals[i] += float(info[w, bit])
        after += sum(2.0**-t for t in totals)
        used = {b for bits in dealt for b in bits}
        spare = [b for b in range(64) if b not in used]
        free = [j for j in range(64) if not any(s.shift <= j < s.shift + s.length for s in subs)]
        for sub, bits in zip(subs, dealt, strict=True):
            source[w, sub.shift : sub.shift + sub.length] = bits
        source[w, free] = spare
    if after * MIN_GAIN > before:
        return None
    return BitPermutation.of(source)
