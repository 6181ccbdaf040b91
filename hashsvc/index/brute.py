"""Exhaustive Hamming-radius scan over packed codes (pure functions, no state).

The database is word-major: ``words`` has shape ``(n_words, n)`` so each word row is
contiguous. Per chunk of the database and per query, the kernel XORs one word row with the
query word, popcounts it (``np.bitwise_count``) and adds into a small accumulator, which is
several times faster than reducing a row-major ``(n, n_words)`` block along its short axis.

Codes of two or more words are *pruned*: only the first ``ceil(n_words / 2)`` words are
scanned for the whole chunk; the rest are gathered for the few codes whose partial distance
is still within the radius (for 256-bit PDQ at r = 31 almost no random code survives 128
bits). Chunks are sized from a working-memory budget so a chunk stays cache-resident while
every query of a batch scans it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import NDArray

DEFAULT_MEMORY_BUDGET: Final = 2 * 1024 * 1024
"""Bytes of working memory per scan (scratch buffers plus the scanned database slice)."""

Hits = tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int32]]
"""``(query_index, position, distance)``, one entry per hit, in no particular order."""

_U8_MAX: Final = 255


def empty_hits() -> Hits:
    """Hits with no entries."""
    return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.int32)


def concat_hits(parts: list[Hits]) -> Hits:
    """Concatenate hit triples (the empty list gives :func:`empty_hits`)."""
    if not parts:
        return empty_hits()
    if len(parts) == 1:
        return parts[0]
    q, p, d = zip(*parts, strict=True)
    return np.concatenate(q), np.concatenate(p), np.concatenate(d)


def prefix_words(n_words: int, radius: int) -> int:
    """Words scanned for every code before pruning (the rest only for survivors).

    Parameters
    ----------
    n_words : int
        uint64 words per code.
    radius : int
        Inclusive search radius.

    Returns
    -------
    int
        ``ceil(n_words / 2)`` when pruning can discard most codes (``radius`` below half the
        prefix bits), otherwise ``n_words`` (no pruning).
    """
    head = (n_words + 1) // 2
    return head if head < n_words and radius < 32 * head else n_words


def chunk_size(n_words: int, memory_budget: int = DEFAULT_MEMORY_BUDGET) -> int:
    """Number of stored codes scanned per chunk.

    Parameters
    ----------
    n_words : int
        uint64 words per code.
    memory_budget : int
        Bytes allowed for the scratch buffers (8 + 1 + 2 + 1 bytes per code) plus the
        scanned database slice (``8 * n_words`` bytes per code, an upper bound).

    Returns
    -------
    int
        Codes per chunk, at least 1.
    """
    per_code = 8 * n_words + 8 + 1 + 2 + 1
    return max(1, memory_budget // per_code)


@dataclass(frozen=True, slots=True)
class _Scratch:
    """Reusable per-scan buffers, each of length ``chunk``."""

    xor: NDArray[np.uint64]
    count: NDArray[np.uint8]
    acc: NDArray[np.unsignedinteger]
    mask: NDArray[np.bool_]

    @classmethod
    def allocate(cls, chunk: int, scanned_bits: int) -> _Scratch:
        acc_dtype = np.uint8 if scanned_bits <= _U8_MAX else np.uint16
        return cls(
            xor=np.empty(chunk, dtype=np.uint64),
            count=np.empty(chunk, dtype=np.uint8),
            acc=np.empty(chunk, dtype=acc_dtype),
            mask=np.empty(chunk, dtype=np.bool_),
        )


def scan(
    words: NDArray[np.uint64],
    queries: NDArray[np.uint64],
    radius: int,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
) -> Hits:
    """Find every stored code within ``radius`` of each query by scanning all of them.

    Parameters
    ----------
    words : ndarray of uint64, shape (n_words, n)
        Packed database codes, word-major, C-contiguous.
    queries : ndarray of uint64, shape (q, n_words)
        Packed query codes, as returned by :func:`codes.pack`.
    radius : int
        Inclusive radius, ``>= 0``.
    memory_budget : int
        Working-memory budget in bytes, see :func:`chunk_size`.

    Returns
    -------
    query_index, position : ndarray of int64, shape (h,)
    distance : ndarray of int32, shape (h,)
        One entry per (query, stored code) pair within ``radius``, unordered.

    Raises
    ------
    ValueError
        If ``queries`` does not have ``n_words`` columns.
    """
    n_words, n = words.shape
    if queries.ndim != 2 or queries.shape[1] != n_words:
        raise ValueError(f"scan: expected queries of shape (q, {n_words}), got {queries.shape}")
    if n == 0 or queries.shape[0] == 0:
        return empty_hits()
    head = prefix_words(n_words, radius)
    step = chunk_size(n_words, memory_budget)
    scratch = _Scratch.allocate(min(step, n), 64 * head)
    parts: list[Hits] = []
    for start in range(0, n, step):
        chunk = words[:, start : start + step]
        for qi in range(queries.shape[0]):
            positions, dists = _scan_chunk(chunk, queries[qi], radius, head, scratch)
            if positions.size:
                qidx = np.full(positions.size, qi, dtype=np.int64)
                parts.append((qidx, positions + start, dists))
    return concat_hits(parts)


def _scan_chunk(
    chunk: NDArray[np.uint64],
    query: NDArray[np.uint64],
    radius: int,
    head: int,
    scratch: _Scratch,
) -> tuple[NDArray[np.int64], NDArray[np.int32]]:
    """Positions in ``chunk`` (shape (n_words, m)) within ``radius``, and their distances."""
    m = chunk.shape[1]
    xor, count, acc, mask = scratch.xor[:m], scratch.count[:m], scratch.acc[:m], scratch.mask[:m]
    np.bitwise_xor(chunk[0], query[0], out=xor)
    np.bitwise_count(xor, out=acc)
    for w in range(1, head):
        np.bitwise_xor(chunk[w], query[w], out=xor)
        np.bitwise_count(xor, out=count)
        np.add(acc, count, out=acc)
    np.less_equal(acc, radius, out=mask)
    positions = np.flatnonzero(mask)
    dists = acc[positions].astype(np.int32)
    for w in range(head, chunk.shape[0]):
        dists += np.bitwise_count(chunk[w, positions] ^ query[w])
        keep = dists <= radius
        positions, dists = positions[keep], dists[keep]
    return positions.astype(np.int64, copy=False), dists


def distances(
    words: NDArray[np.uint64],
    queries: NDArray[np.uint64],
    positions: NDArray[np.int64],
    query_index: NDArray[np.int64],
    radius: int,
) -> Hits:
    """Verify candidate pairs exactly and keep those within ``radius``.

    Parameters
    ----------
    words : ndarray of uint64, shape (n_words, n)
        Packed database codes, word-major.
    queries : ndarray of uint64, shape (q, n_words)
        Packed query codes.
    positions, query_index : ndarray of int64, shape (c,)
        Candidate pairs: stored code ``positions[i]`` against query ``query_index[i]``.
    radius : int
        Inclusive radius.

    Returns
    -------
    Hits
        The pairs within ``radius`` with their distances, in input order (duplicates kept).
    """
    dists = np.zeros(positions.shape[0], dtype=np.int32)
    for w in range(words.shape[0]):
        dists += np.bitwise_count(words[w, positions] ^ queries[query_index, w])
        if w + 1 < words.shape[0]:  # prune before gathering the next word
            keep = np.flatnonzero(dists <= radius)
            positions, query_index, dists = positions[keep], query_index[keep], dists[keep]
    keep = np.flatnonzero(dists <= radius)
    return query_index[keep], positions[keep], dists[keep]
