"""Immutable segments of an index and the per-query choice between scanning and probing.

A :class:`Segment` holds packed codes (word-major), their ids (:class:`IdColumn`), optional
multi-index tables (:class:`Tables`; the rows are then sorted by substring 0, otherwise by
id) and tombstones (rows of removed codes, filtered out of every result). Segments are never
modified in place: a change returns a new segment sharing the unchanged arrays, which keeps
copy-on-write snapshots cheap.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Final, TypeVar

import numpy as np
from numpy.typing import NDArray

from hashsvc.index import bitperm, brute, mih
from hashsvc.index.bitperm import BitPermutation
from hashsvc.index.ids import IdColumn
from hashsvc.index.sorting import argsort_ids, argsort_small, is_sorted
from hashsvc.index.tables import Tables

SCAN_NS_PER_WORD: Final = 1.6
"""Measured cost of scanning one word of one code for one query (numpy XOR + popcount)."""

SCAN_NS_FIXED: Final = 20_000.0
"""Per query and segment overhead of a scan."""

PROBE_NS: Final = 25.0
"""Measured cost of one bucket probe (two offset gathers plus the range expansion)."""

SEQUENTIAL_NS: Final = 4.0
RANDOM_NS: Final = 30.0
"""Measured cost of verifying one candidate read contiguously / gathered at random."""

PROBE_NS_FIXED: Final = 150_000.0
"""Per query batch overhead of the MIH path (a few dozen numpy calls)."""

PROBE_BATCH: Final = 1 << 18
"""Probe entries (queries times probes) expanded at once, to bound temporary memory."""

TOMBSTONE_MIN: Final = 1 << 17
"""Segments larger than this take removals as tombstones rather than being copied."""


PATHS: Final = ("auto", "mih", "scan")


@dataclass(frozen=True, slots=True)
class Tuning:
    """Search settings shared by an index's segments.

    Attributes
    ----------
    memory_budget : int
        Scan working-memory budget in bytes (see :func:`brute.chunk_size`).
    min_table_size : int
        Segments with fewer codes get no multi-index tables.
    path : str
        ``"auto"`` (the cost model picks per query), ``"mih"`` or ``"scan"`` (forced, for
        tests and benchmarks; ``"mih"`` still scans segments without tables).
    """

    memory_budget: int = brute.DEFAULT_MEMORY_BUDGET
    min_table_size: int = mih.MIN_TABLE_SIZE
    path: str = "auto"


_A = TypeVar("_A", bound=np.generic)


def _readonly(array: NDArray[_A]) -> NDArray[_A]:
    array.flags.writeable = False
    return array


@dataclass(frozen=True, slots=True)
class Segment:
    """Codes with their ids, optionally multi-index tables, and tombstones.

    Attributes
    ----------
    ids : IdColumn
        Id of each row.
    words : ndarray of uint64, shape (n_words, n)
        Packed codes, word-major, C-contiguous, read-only.
    tables : Tables or None
        Multi-index tables over ``words`` (rows sorted by substring 0); None: rows are in
        id order and the segment is only scanned.
    dead : ndarray of int64, shape (k,)
        Sorted rows of removed codes (tombstones), never returned by :meth:`search`.
    """

    ids: IdColumn
    words: NDArray[np.uint64]
    tables: Tables | None
    dead: NDArray[np.int64]

    @classmethod
    def empty(cls, n_words: int) -> Segment:
        """A segment with no codes."""
        return cls.build(np.empty(0, np.int64), np.empty((n_words, 0), np.uint64))

    @classmethod
    def build(
        cls,
        ids: NDArray[np.int64],
        words: NDArray[np.uint64],
        *,
        tables: int | None = None,
        permutation: BitPermutation | None = None,
    ) -> Segment:
        """Segment over unique ``ids`` (n,) and word-major ``words`` (n_words, n).

        With ``tables`` set (a minimum size), multi-index tables are built when
        :func:`mih.layout_for` advises them, over the codes bit-permuted by
        :func:`bitperm.balanced` when that balances the substrings. A given
        ``permutation`` means ``words`` are permuted by it already (a merge keeping its
        main segment's permutation); it requires tables. The inputs are not modified.
        """
        n_words = words.shape[0]
        layout = mih.layout_for(ids.shape[0], n_words, tables) if tables is not None else ()
        if permutation is not None and not layout:
            raise ValueError("a permutation needs multi-index tables")
        if layout:
            if permutation is None:
                permutation = bitperm.balanced(words, layout)
                if permutation is not None:
                    words = permutation.apply(words)
            order = argsort_small(layout[0].keys(words))
            ids, words = ids[order], np.take(words, order, axis=1)
        elif not is_sorted(ids):
            order = argsort_ids(ids)
            ids, words = ids[order], np.take(words, order, axis=1)
        words = np.ascontiguousarray(words)
        index = Tables.build(words, layout, permutation) if layout else None
        if index is not None and index.codes is not None:  # share the rows held by the tables
            words = index.codes[: words.shape[1]].reshape(1, -1)
        empty = np.empty(0, np.int64)
        return cls(IdColumn.build(ids), _readonly(words), index, _readonly(empty))

    @property
    def permutation(self) -> BitPermutation | None:
        """The bit permutation the rows are stored under (None: the codes' own order)."""
        return self.tables.permutation if self.tables is not None else None

    @property
    def size(self) -> int:
        """Number of live codes."""
        return self.ids.size - int(self.dead.shape[0])

    @property
    def nbytes(self) -> int:
        """Bytes held by the segment's arrays."""
        if self.tables is None:
            return int(self.ids.nbytes + self.words.nbytes + self.dead.nbytes)
        words = 0 if self.tables.copies else self.words.nbytes  # copies hold the rows
        return int(self.ids.nbytes + words + self.dead.nbytes + self.tables.nbytes)

    def locate(self, ids: NDArray[np.int64]) -> NDArray[np.int64]:
        """Sorted rows of the live codes among ``ids`` (absent ids are skipped)."""
        rows = self.ids.find(ids)
        if self.dead.shape[0] and rows.shape[0]:
            rows = rows[~np.isin(rows, self.dead, assume_unique=True)]
        return rows

    def discard(self, rows: NDArray[np.int64]) -> Segment:
        """Segment without the codes at ``rows`` (sorted, unique, live).

        A segment with tables, or a large one, records tombstones (the tables stay valid);
        a small one is copied without those codes.
        """
        if rows.shape[0] == 0:
            return self
        if self.tables is not None or self.ids.size > TOMBSTONE_MIN:
            return replace(self, dead=_readonly(np.union1d(self.dead, rows)))
        keep = np.ones(self.ids.size, dtype=np.bool_)
        keep[rows] = False
        return Segment.build(self.ids.all()[keep], self.words[:, keep])

    def live(self) -> tuple[NDArray[np.int64], NDArray[np.uint64]]:
        """Ids and word-major words of the live codes, in row order, bits in their own order."""
        ids, words = self._live_rows()
        if self.permutation is not None:
            words = self.permutation.inverse.apply(words)
        return ids, words

    def _live_rows(self) -> tuple[NDArray[np.int64], NDArray[np.uint64]]:
        """Ids and stored (possibly permuted) words of the live codes, in row order."""
        if self.dead.shape[0] == 0:
            return self.ids.all(), self.words
        keep = np.ones(self.ids.size, dtype=np.bool_)
        keep[self.dead] = False
        return self.ids.all()[keep], self.words[:, keep]

    def merge(self, other: Segment, *, tables: int | None = None) -> Segment:
        """Live codes of both segments in one new segment (their ids must be disjoint).

        ``tables`` is the minimum size for multi-index tables (None: none). When the merged
        segment gets the same substrings as this one, it keeps this one's bit permutation:
        only ``other``'s codes are permuted, not this segment's.
        """
        if tables is None and other.size == 0 and self.dead.shape[0] == 0:
            return self
        if tables is None and self.ids.size == 0 and other.dead.shape[0] == 0:
            return other
        ids_b, words_b = other.live()
        keep = self.permutation
        if keep is not None and self.tables is not None and tables is not None:
            total = self.size + other.size
            if mih.layout_for(total, self.words.shape[0], tables) == self.tables.layout:
                ids_a, words_a = self._live_rows()
                ids = np.concatenate([ids_a, ids_b])
                words = np.concatenate([words_a, keep.apply(words_b)], axis=1)
                return Segment.build(ids, words, tables=tables, permutation=keep)
        ids_a, words_a = self.live()
        ids = np.concatenate([ids_a, ids_b])
        words = np.concatenate([words_a, words_b], axis=1)
        return Segment.build(ids, words, tables=tables)

    def search(self, queries: NDArray[np.uint64], radius: int, tuning: Tuning) -> brute.Hits:
        """Every live code within ``radius`` of each query.

        Parameters
        ----------
        queries : ndarray of uint64, shape (q, n_words)
            Packed queries.
        radius : int
            Inclusive radius, ``0 <= radius <= 64 * n_words``.
        tuning : Tuning
            Scan budget and search path.

        Returns
        -------
        Hits
            ``(query_index, row, distance)``, unordered, each pair once.
        """
        if self.ids.size == 0 or queries.shape[0] == 0:
            return brute.empty_hits()
        if self.permutation is not None:  # distances are the same under the permutation
            queries = self.permutation.apply_rows(queries)
        if self.tables is None or tuning.path == "scan":
            hits = brute.scan(self.words, queries, radius, tuning.memory_budget)
        else:
            hits = self._probe_or_scan(self.tables, queries, radius, tuning)
        if self.dead.shape[0] and hits[1].shape[0]:
            keep = ~np.isin(hits[1], self.dead)
            hits = hits[0][keep], hits[1][keep], hits[2][keep]
        return hits

    def _probe_or_scan(
        self, tables: Tables, queries: NDArray[np.uint64], radius: int, tuning: Tuning
    ) -> brute.Hits:
        """Route each query to MIH probing or to the scan, whichever is cheaper for it.

        The scan costs about ``SCAN_NS_PER_WORD`` per scanned word and code; probing costs
        ``PROBE_NS`` per probe plus, per candidate, ``SEQUENTIAL_NS`` or ``RANDOM_NS``
        depending on the table. Probe counts follow from the radius; candidate counts are
        read from the sizes of the probed buckets, so a query landing in the huge buckets
        of biased or duplicated codes is scanned instead.
        """
        head = brute.prefix_words(self.words.shape[0], radius)
        scan_ns = SCAN_NS_FIXED + SCAN_NS_PER_WORD * head * self.ids.size
        if tuning.path == "mih":
            scan_ns = float("inf")
        weights = tables.weights(RANDOM_NS / PROBE_NS, SEQUENTIAL_NS / PROBE_NS)
        plan = tables.plan(radius, weights)
        if plan.probes * PROBE_NS >= scan_ns or plan.probes > mih.MAX_PROBES_PER_TABLE:
            return brute.scan(self.words, queries, radius, tuning.memory_budget)
        per_table = np.asarray(weights) * PROBE_NS
        by_column = None if np.ptp(per_table) == 0 else per_table[plan.table]  # None: uniform
        parts: list[brute.Hits] = []
        scanned: list[NDArray[np.intp]] = []
        group = max(1, PROBE_BATCH // plan.probes)
        for first in range(0, queries.shape[0], group):
            batch = queries[first : first + group]
            probe = tables.probe(batch, plan)
            fixed = PROBE_NS_FIXED / batch.shape[0] + plan.probes * PROBE_NS
            if by_column is None:  # copy tables: every candidate costs the same
                work = probe.counts.sum(axis=1) * per_table[0]
            else:
                work = probe.counts @ by_column
            cheap = fixed + work < scan_ns
            scanned.append(np.flatnonzero(~cheap) + first)
            rows = np.flatnonzero(cheap)
            if rows.shape[0]:
                picked = probe if rows.shape[0] == batch.shape[0] else probe.rows(rows)
                q, pos, dist = tables.verify(self.words, batch[rows], picked, radius)
                parts.append((rows[q] + first, pos, dist))
        rest = np.concatenate(scanned)
        if rest.shape[0]:
            q, pos, dist = brute.scan(self.words, queries[rest], radius, tuning.memory_budget)
            parts.append((rest[q], pos, dist))
        return brute.concat_hits(parts)
