"""The :class:`HammingIndex` facade: validation, copy-on-write state, delta merging."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import ArrayLike, NDArray

from hashsvc.index import brute, mih, validate
from hashsvc.index.codes import pack
from hashsvc.index.segment import PATHS, Segment, Tuning

SearchResult = tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int32]]
"""``(lims, ids, dists)`` in CSR form; see :meth:`HammingIndex.search`."""

MIN_DELTA: Final = 4_096
MAX_DELTA: Final = 65_536
"""Default merge threshold: ``clamp(main_size // 64, MIN_DELTA, MAX_DELTA)`` recent adds."""

DEAD_FRACTION: Final = 8
"""Tombstones are compacted once they exceed ``1 / DEAD_FRACTION`` of the main segment."""


@dataclass(frozen=True, slots=True)
class _State:
    """One immutable version of the index: every search reads exactly one."""

    main: Segment  # with multi-index tables; removals are tombstones
    frozen: Segment  # adds being merged into main by a running merge (else empty)
    delta: Segment  # recent adds, scanned

    @property
    def segments(self) -> tuple[Segment, Segment, Segment]:
        return self.main, self.frozen, self.delta

    def discard(self, ids: NDArray[np.int64]) -> _State:
        """The state without the codes of ``ids`` (unknown ids are ignored)."""
        return _State(*(s.discard(s.locate(ids)) for s in self.segments))


class HammingIndex:
    """In-memory set of ``(id, code)`` pairs searchable exactly by Hamming radius.

    Parameters
    ----------
    bits : int
        Code length; a positive multiple of 64 (64 for pHash, 256 for PDQ).
    memory_budget : int
        Working-memory budget in bytes per scan, see :func:`brute.chunk_size`.
    merge_threshold : int, optional
        Recent adds held in the scanned delta before it is merged into the main segment;
        by default ``clamp(len(main) // 64, 4096, 65536)``.
    background : bool
        Merge in a background thread (default) or inline, inside the ``add``/``remove``
        that crosses the threshold.
    min_table_size : int
        Main segments with fewer codes get no multi-index tables (a scan is as fast).
    search_path : {"auto", "mih", "scan"}
        ``"auto"`` lets the cost model choose per query; the others force a path (tests
        and benchmarks). Results are identical whatever the path.

    Notes
    -----
    Codes are uint8 arrays of shape ``(n, bits // 8)`` holding the bytes of the hex form
    (``bytes.fromhex(hex)``). Ids are unique: adding a present id replaces its code.

    Layout: a *main* segment (with multi-index hashing tables, see :mod:`.tables`) plus a small
    *delta* of recent adds that is scanned. Removals (and replaced codes) in the main
    segment are tombstones. When the delta outgrows the threshold, or tombstones exceed an
    eighth of the main segment, a merge freezes the delta and builds a new main segment
    off to the side; adds and removes made meanwhile are replayed onto it when it is
    swapped in. Each search picks, per segment and per query, MIH probing or a scan from
    the segment size, the code length, the radius and the sizes of the probed buckets.

    Thread safety is copy-on-write: the state is an immutable snapshot. Mutations build a
    new one under a writer lock and swap the reference, so a concurrent ``search`` sees
    either the old or the new state, never a mix, and never blocks. An ``add`` copies only
    the delta (at most the threshold), not the index.
    """

    def __init__(
        self,
        bits: int = 256,
        *,
        memory_budget: int = brute.DEFAULT_MEMORY_BUDGET,
        merge_threshold: int | None = None,
        background: bool = True,
        min_table_size: int = mih.MIN_TABLE_SIZE,
        search_path: str = "auto",
    ) -> None:
        self._bits = validate.bits(bits)
        if search_path not in PATHS:
            raise ValueError(f"search_path must be one of {PATHS}, got {search_path!r}")
        self._tuning = Tuning(
            validate.positive("memory_budget", memory_budget),
            validate.positive("min_table_size", min_table_size),
            search_path,
        )
        self._merge_threshold = (
            None
            if merge_threshold is None
            else validate.positive("merge_threshold", merge_threshold)
        )
        self._background = background
        self._write_lock = threading.Lock()  # serialises state swaps
        self._merge_lock = threading.Lock()  # one merge at a time
        self._touched: list[NDArray[np.int64]] | None = None  # ids changed during a merge
        empty = Segment.empty(bits // 64)
        self._state = _State(empty, empty, empty)

    @property
    def bits(self) -> int:
        """Code length in bits."""
        return self._bits

    @property
    def nbytes_per_code(self) -> int:
        """Bytes per code, ``bits // 8``."""
        return self._bits // 8

    @property
    def nbytes(self) -> int:
        """Bytes held by the index's arrays (codes, ids, tables, tombstones, delta)."""
        return sum(s.nbytes for s in self._state.segments)

    def __len__(self) -> int:
        """Number of live codes."""
        return sum(s.size for s in self._state.segments)

    def add(self, ids: ArrayLike, codes: ArrayLike) -> None:
        """Insert codes, replacing the code of any id already present (upsert).

        Parameters
        ----------
        ids : array_like of integers, shape (n,)
            Unique within the call; any integer dtype whose values fit int64.
        codes : ndarray of uint8, shape (n, bits // 8)
            Any memory layout.

        Raises
        ------
        ValueError
            On wrong shape or dtype, mismatched lengths, or duplicate ids in ``ids``.
        """
        new_ids, new_codes = validate.sort_unique(
            validate.ids(ids), validate.codes(codes, self.nbytes_per_code, "codes")
        )
        if new_ids.shape[0] == 0:
            return
        added = Segment.build(new_ids, np.ascontiguousarray(pack(new_codes).T))
        with self._write_lock:
            state = self._state.discard(new_ids)
            self._state = _State(state.main, state.frozen, state.delta.merge(added))
            self._note_touched(new_ids)
        self._merge_if_due()

    def remove(self, ids: ArrayLike) -> None:
        """Delete codes by id; unknown ids are ignored.

        Parameters
        ----------
        ids : array_like of integers, shape (n,)
            Any integer dtype whose values fit int64; repeats are allowed.
        """
        gone = validate.ids(ids)
        with self._write_lock:
            self._state = self._state.discard(gone)
            self._note_touched(gone)
        self._merge_if_due()

    def compact(self) -> None:
        """Merge the delta and drop tombstones now, waiting for a running merge first.

        Call after a bulk load so that searches use the tables straight away.
        """
        with self._merge_lock:
            while self._merge_once():
                pass

    def search(self, queries: ArrayLike, max_distance: int) -> SearchResult:
        """Find all stored codes within ``max_distance`` (inclusive) of each query.

        Parameters
        ----------
        queries : ndarray of uint8, shape (q, bits // 8)
            Any memory layout; ``q`` may be 0.
        max_distance : int
            Non-negative radius; values above ``bits`` behave as ``bits``.

        Returns
        -------
        lims : ndarray of int64, shape (q + 1,)
            Results of query ``i`` are ``ids[lims[i]:lims[i + 1]]``, likewise ``dists``.
        ids : ndarray of int64
        dists : ndarray of int32
            Within each query, sorted by (distance, id).

        Raises
        ------
        ValueError
            On wrong query shape or dtype, or a negative or non-integer radius.
        """
        packed = pack(validate.codes(queries, self.nbytes_per_code, "queries"))
        radius = min(validate.radius(max_distance), self._bits)
        parts: list[brute.Hits] = []
        for segment in self._state.segments:  # one snapshot for the whole search
            if segment.size:
                q, pos, dist = segment.search(packed, radius, self._tuning)
                parts.append((q, segment.ids.take(pos), dist))
        return _to_csr(brute.concat_hits(parts), packed.shape[0])

    # -- merging --------------------------------------------------------------------------

    def _threshold(self, main_size: int) -> int:
        if self._merge_threshold is not None:
            return self._merge_threshold
        return min(MAX_DELTA, max(MIN_DELTA, main_size // 64))

    def _due(self, state: _State) -> bool:
        main = state.main
        dead = main.dead.shape[0]
        return (
            state.delta.size >= self._threshold(main.size)
            or dead * DEAD_FRACTION > main.ids.size
            or (state.frozen.size > 0 and self._touched is None)  # a failed merge's leftovers
        )

    def _note_touched(self, ids: NDArray[np.int64]) -> None:
        if self._touched is not None:
            self._touched.append(ids)

    def _merge_if_due(self) -> None:
        if not self._due(self._state) or not self._merge_lock.acquire(blocking=False):
            return  # nothing to do, or a running merge re-checks when it finishes
        if not self._background:
            try:
                self._merge_once()
            finally:
                self._merge_lock.release()
            return
        threading.Thread(
            target=self._merge_in_background, name="hamming-merge", daemon=True
        ).start()

    def _merge_in_background(self) -> None:
        try:
            while self._due(self._state) and self._merge_once():
                pass
        finally:
            self._merge_lock.release()
        self._merge_if_due()  # a mutation may have come due while the lock was held

    def _merge_once(self) -> bool:
        """Fold the delta into a new main segment (merge lock held); False if nothing to do."""
        with self._write_lock:
            state = self._state
            if not (state.delta.size or state.frozen.size or state.main.dead.shape[0]):
                return False
            frozen = state.frozen.merge(state.delta)
            self._state = _State(state.main, frozen, Segment.empty(self._bits // 64))
            self._touched = []
        try:
            main = state.main.merge(frozen, tables=self._tuning.min_table_size)  # slow, lock-free
        except BaseException:
            with self._write_lock:
                self._touched = None  # frozen stays searchable; the next merge retries
            raise
        with self._write_lock:
            touched = np.concatenate(self._touched) if self._touched else np.empty(0, np.int64)
            self._touched = None
            main = main.discard(main.locate(touched))  # replay what changed meanwhile
            self._state = _State(main, Segment.empty(self._bits // 64), self._state.delta)
        return True


def _to_csr(hits: brute.Hits, n_queries: int) -> SearchResult:
    """Hits with ids in place of positions -> CSR arrays sorted by (query, distance, id)."""
    query_index, ids, dists = hits
    lims = np.zeros(n_queries + 1, dtype=np.int64)
    if ids.shape[0] == 0:
        return lims, np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int32)
    np.cumsum(np.bincount(query_index, minlength=n_queries), out=lims[1:])
    packed = _sorted_keys(query_index, ids, dists, n_queries)
    if packed is not None:
        keys, low, dist_shift = packed
        out_ids = (keys & np.int64(_ID_MASK)) + np.int64(low)
        out_dists = ((keys >> np.int64(32)) & np.int64((1 << dist_shift) - 1)).astype(np.int32)
        return lims, out_ids, out_dists
    order = np.lexsort((ids, dists, query_index))
    return lims, ids[order], dists[order]


_ID_MASK: Final = (1 << 32) - 1
_FEW_HITS: Final = 256
"""Below this many hits ``np.lexsort`` is as fast as packing keys."""


def _sorted_keys(
    query_index: NDArray[np.int64], ids: NDArray[np.int64], dists: NDArray[np.int32], n: int
) -> tuple[NDArray[np.int64], int, int] | None:
    """``query << (32 + b) | dist << 32 | (id - low)`` sorted, with ``low`` and ``b``, when
    that fits 63 bits (ids spanning < 2**32, as they do in practice); else None.

    ``np.sort`` of one int64 key is many times faster than a three-key ``np.lexsort``.
    """
    if ids.shape[0] < _FEW_HITS:
        return None
    low, high = int(ids.min()), int(ids.max())
    dist_bits = max(1, int(dists.max()).bit_length())
    if high - low > _ID_MASK or 32 + dist_bits + max(1, (n - 1).bit_length()) > 63:
        return None
    keys = ids - np.int64(low)
    keys |= dists.astype(np.int64) << np.int64(32)
    keys |= query_index << np.int64(32 + dist_bits)
    keys.sort()
    return keys, low, dist_bits
