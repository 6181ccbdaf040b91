"""Exhaustive Hamming-radius search over packed codes (pure functions, no state).

The database is word-major: ``db_words`` has shape ``(n_words, n)`` so each word column
is contiguous. Per chunk of the database and per query, the kernel XORs one word column
with the query word, popcounts it (``np.bitwise_count``) and adds into a small integer
accumulator, which is several times faster than reducing a row-major ``(n, n_words)``
block along its short last axis.

Chunks are sized from a working-memory budget covering the scratch buffers and the
database slice, so the slice stays cache-resident while every query of a batch scans it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import NDArray

DEFAULT_MEMORY_BUDGET: Final = 8 * 1024 * 1024
"""Bytes of working memory per search (scratch buffers plus the scanned database slice)."""

SearchResult = tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int32]]
"""``(lims, ids, dists)`` in CSR form; see :func:`search`."""

_Hit = tuple[int, NDArray[np.intp], NDArray[np.unsignedinteger]]


@dataclass(frozen=True, slots=True)
class _Scratch:
    """Reusable per-search buffers, each of length ``chunk``."""

    xor: NDArray[np.uint64]
    count: NDArray[np.uint8]
    acc: NDArray[np.unsignedinteger]
    mask: NDArray[np.bool_]

    @classmethod
    def allocate(cls, chunk: int, bits: int) -> _Scratch:
        acc_dtype = np.uint16 if bits <= np.iinfo(np.uint16).max else np.uint32
        return cls(
            xor=np.empty(chunk, dtype=np.uint64),
            count=np.empty(chunk, dtype=np.uint8),
            acc=np.empty(chunk, dtype=acc_dtype),
            mask=np.empty(chunk, dtype=np.bool_),
        )


def chunk_size(n_words: int, memory_budget: int = DEFAULT_MEMORY_BUDGET) -> int:
    """Number of stored codes scanned per chunk.

    Parameters
    ----------
    n_words : int
        uint64 words per code.
    memory_budget : int
        Bytes allowed for the scratch buffers (8 + 1 + 4 + 1 bytes per code, upper bound)
        plus the database slice (``8 * n_words`` bytes per code).

    Returns
    -------
    int
        Codes per chunk, at least 1.
    """
    per_code = 8 * n_words + 8 + 1 + 4 + 1
    return max(1, memory_budget // per_code)


def search(
    db_words: NDArray[np.uint64],
    db_ids: NDArray[np.int64],
    queries: NDArray[np.uint64],
    max_distance: int,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
) -> SearchResult:
    """Find every stored code within ``max_distance`` of each query.

    Parameters
    ----------
    db_words : ndarray of uint64, shape (n_words, n)
        Packed database codes, word-major (the transpose of :func:`codes.pack` output).
    db_ids : ndarray of int64, shape (n,)
        Id of each database column.
    queries : ndarray of uint64, shape (q, n_words)
        Packed query codes, as returned by :func:`codes.pack`.
    max_distance : int
        Inclusive radius, ``>= 0``.
    memory_budget : int
        Working-memory budget in bytes, see :func:`chunk_size`.

    Returns
    -------
    lims : ndarray of int64, shape (q + 1,)
        Results of query ``i`` are ``ids[lims[i]:lims[i + 1]]`` and likewise ``dists``.
    ids : ndarray of int64, shape (lims[-1],)
    dists : ndarray of int32, shape (lims[-1],)
        Within each query, results are sorted by (distance, id).
    """
    n_words, n = db_words.shape
    if queries.ndim != 2 or queries.shape[1] != n_words or db_ids.shape != (n,):
        raise ValueError(
            f"search: expected queries of shape (q, {n_words}) and ids of shape ({n},), "
            f"got {queries.shape} and {db_ids.shape}"
        )
    bits = 64 * n_words
    radius = min(max_distance, bits)
    db = np.ascontiguousarray(db_words)
    step = chunk_size(n_words, memory_budget)
    scratch = _Scratch.allocate(min(step, n), bits)
    hits: list[_Hit] = []
    for start in range(0, n, step):
        chunk = db[:, start : start + step]
        for qi in range(queries.shape[0]):
            positions, dists = _scan_chunk(chunk, queries[qi], radius, scratch)
            if positions.size:
                hits.append((qi, positions + start, dists))
    return _to_csr(hits, db_ids, queries.shape[0])


def _scan_chunk(
    chunk: NDArray[np.uint64],
    query: NDArray[np.uint64],
    radius: int,
    scratch: _Scratch,
) -> tuple[NDArray[np.intp], NDArray[np.unsignedinteger]]:
    """Positions within ``chunk`` (shape (n_words, m)) at distance <= radius, and distances."""
    m = chunk.shape[1]
    xor, count, acc, mask = scratch.xor[:m], scratch.count[:m], scratch.acc[:m], scratch.mask[:m]
    np.bitwise_xor(chunk[0], query[0], out=xor)
    np.bitwise_count(xor, out=acc)
    for w in range(1, chunk.shape[0]):
        np.bitwise_xor(chunk[w], query[w], out=xor)
        np.bitwise_count(xor, out=count)
        np.add(acc, count, out=acc)
    np.less_equal(acc, radius, out=mask)
    positions = np.flatnonzero(mask)
    return positions, acc[positions]


def _to_csr(hits: list[_Hit], db_ids: NDArray[np.int64], n_queries: int) -> SearchResult:
    """Assemble per-(query, chunk) hits into CSR arrays sorted by (query, distance, id)."""
    lims = np.zeros(n_queries + 1, dtype=np.int64)
    if not hits:
        return lims, np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int32)
    query_idx = np.concatenate([np.full(pos.size, qi, dtype=np.int64) for qi, pos, _ in hits])
    ids = db_ids[np.concatenate([pos for _, pos, _ in hits])]
    dists = np.concatenate([d for _, _, d in hits]).astype(np.int32)
    order = np.lexsort((ids, dists, query_idx))
    np.cumsum(np.bincount(query_idx, minlength=n_queries), out=lims[1:])
    return lims, ids[order], dists[order]
