"""Multi-index hash tables over one segment's codes (the method is in :mod:`.mih`).

Table 0 is the segment itself: its rows are sorted by substring 0, so a bucket of table 0 is
a contiguous row range. Every other table ``t`` stores one entry per code, sorted by
substring ``t``, of one of two kinds:

- *copies* (one-word codes, pHash): the code itself, sorted by substring ``t`` (then by its
  bits rotated so that substring ``t`` comes first). Candidates are verified straight from
  the table (contiguous reads, no random access per candidate, and the same query word for
  every table); a survivor is mapped back to its rows through its table-0 bucket, unless
  table 0 found it already.
- *positions* (longer codes, PDQ): the row (uint32); candidates are gathered from the rows.

Entries are numbered globally: entry ``e < n`` is row ``e`` (table 0) and entry
``t * n + i`` is entry ``i`` of table ``t``. ``codes`` (copies) holds every table, block 0
being the segment's rows themselves (shared with the segment, not duplicated), indexed by
entry; ``positions`` holds tables 1.. only, so entry ``e >= n`` is ``positions[e - n]``.
``offsets`` holds each table's bucket boundaries as entry numbers, all tables concatenated,
so probing a batch of queries over every table is a few vectorised gathers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from hashsvc.index import brute
from hashsvc.index.bitperm import BitPermutation
from hashsvc.index.mih import Substring
from hashsvc.index.probing import Plan, Probe
from hashsvc.index.ranges import expand, flatten, repeat_runs

_FEW_CODES = 8
"""Up to this many survivors are mapped back to rows one at a time (fewer numpy calls)."""

SKEW_LIMIT = 2.0
"""Tables more crowded than this (see :func:`_skew`) get adaptive probe plans."""


def rotation(sub: Substring) -> int:
    """Left rotation (bits) that moves ``sub`` to the top of its word."""
    return (64 - sub.shift - sub.length) % 64


@dataclass(frozen=True, slots=True)
class Tables:
    """The multi-index tables of a segment of ``n`` codes; see the module docstring."""

    layout: tuple[Substring, ...]
    bases: tuple[int, ...]
    offsets: NDArray[np.unsignedinteger] | NDArray[np.int64]
    codes: NDArray[np.uint64] | None
    positions: NDArray[np.uint32] | None
    n: int
    skewed: bool
    permutation: BitPermutation | None  # the rows' bits are permuted by it (None: not)
    _plans: dict[tuple[int, tuple[float, ...]], Plan] = field(
        default_factory=dict, compare=False, repr=False
    )

    @property
    def copies(self) -> bool:
        """True if tables 1.. hold rotated copies of the codes, False if row positions."""
        return self.codes is not None

    @property
    def nbytes(self) -> int:
        """Bytes held by the tables (for copies, including the segment's own rows)."""
        held = self.codes if self.codes is not None else self.positions
        return int(self.offsets.nbytes + (held.nbytes if held is not None else 0))

    def weights(self, random_ns: float, sequential_ns: float) -> tuple[float, ...]:
        """Cost of one candidate of each table (contiguous reads unless positions)."""
        if self.copies:
            return tuple(sequential_ns for _ in self.layout)
        return (sequential_ns, *(random_ns for _ in self.layout[1:]))

    @classmethod
    def build(
        cls,
        words: NDArray[np.uint64],
        layout: tuple[Substring, ...],
        permutation: BitPermutation | None = None,
    ) -> Tables:
        """Tables of ``layout`` over ``words`` (n_words, n), rows sorted by substring 0.

        ``permutation``: the bit permutation ``words`` were stored under (queries are
        permuted likewise before probing), or None.
        """
        n = words.shape[1]
        sizes = [(1 << s.length) + 1 for s in layout]
        bases = np.cumsum([0, *sizes]).tolist()
        wide = len(layout) * n >= 1 << 32
        offsets = np.empty(bases[-1], dtype=np.int64 if wide else np.uint32)
        copies = words.shape[0] == 1
        scratch = _Scratch(np.empty(n, np.uint64), np.arange(0 if copies else n, dtype=np.uint64))
        offsets[bases[0] : bases[1]] = scratch.bucket_offsets(words, layout[0])
        first: NDArray[np.int64] = offsets[bases[0] : bases[1]].astype(np.int64)
        skew = [_skew(first[1:] - first[:-1])]
        codes, positions = None, None
        if copies:  # block 0 is the segment's own rows; the segment keeps a view of it
            codes = np.empty(len(layout) * n, dtype=np.uint64)
            codes[:n] = words[0]
        else:
            positions = np.empty((len(layout) - 1) * n, dtype=np.uint32)
        for t in range(1, len(layout)):
            if codes is not None:
                counts = scratch.fill_copies(words[0], layout[t], codes[t * n : (t + 1) * n])
            else:
                assert positions is not None
                part = positions[(t - 1) * n : t * n]
                counts = scratch.fill_positions(words, layout[t], part)
            offsets[bases[t] : bases[t + 1]] = _cumulative(counts) + t * n
            skew.append(_skew(counts))
        for array in (offsets, codes, positions):
            if array is not None:
                array.flags.writeable = False
        skewed = max(skew) > SKEW_LIMIT
        return cls(layout, tuple(bases[:-1]), offsets, codes, positions, n, skewed, permutation)

    def plan(self, radius: int, weights: tuple[float, ...]) -> Plan:
        """The probe plan for ``radius`` (cached per radius and weights)."""
        key = (radius, weights)
        plan = self._plans.get(key)
        if plan is None:
            plan = Plan.make(self.layout, self.bases, self.n, radius, weights, self.skewed)
            if len(self._plans) < 64:
                self._plans[key] = plan
        return plan

    def probe(self, queries: NDArray[np.uint64], plan: Plan) -> Probe:
        """Buckets of ``plan`` for each query (shape (q, n_words) uint64)."""
        return plan.lookup(self.offsets, queries)

    def verify(
        self,
        words: NDArray[np.uint64],
        queries: NDArray[np.uint64],
        probe: Probe,
        radius: int,
    ) -> brute.Hits:
        """Candidates of ``probe`` within ``radius``, each (query, row) once.

        Parameters
        ----------
        words : ndarray of uint64, shape (n_words, n)
            The segment's rows (sorted by substring 0).
        queries : ndarray of uint64, shape (q, n_words)
            The queries the rows of ``probe`` belong to.
        probe : Probe
        radius : int

        Returns
        -------
        Hits
            ``(query_index, row, distance)``.
        """
        if self.codes is not None:
            return self._verify_copies(self.codes, words, queries, probe, radius)
        assert self.positions is not None
        cells = _Cells.of(probe)
        rows = cells.entries.copy()
        other = np.flatnonzero(rows >= self.n)
        rows[other] = self.positions[rows[other] - self.n]
        dists = np.zeros(rows.shape[0], dtype=np.int32)
        for w in range(words.shape[0]):
            target = repeat_runs(queries[cells.query, w], cells.ends)
            dists += np.bitwise_count(words[w, rows] ^ target)
            keep = np.flatnonzero(dists <= radius)
            if w + 1 < words.shape[0] and keep.shape[0] < rows.shape[0] // 2:
                cells, rows, dists = cells.subset(keep), rows[keep], dists[keep]
        keep = np.flatnonzero(dists <= radius)
        hits = (cells.query[cells.owner(keep)], rows[keep], dists[keep])
        return _unique_pairs(hits, self.n)

    def _verify_copies(
        self,
        store: NDArray[np.uint64],
        words: NDArray[np.uint64],
        queries: NDArray[np.uint64],
        probe: Probe,
        radius: int,
    ) -> brute.Hits:
        """Verify entries in place; map copy survivors table 0 missed back to rows."""
        cells = _Cells.of(probe)
        values = store[cells.entries]
        if queries.shape[0] == 1:  # one query word for every entry: no per-entry target
            target: NDArray[np.uint64] | np.uint64 = queries[0, 0]
        else:  # cells are query-major: one run per query
            target = np.repeat(queries[:, 0], probe.counts.sum(axis=1))
        np.bitwise_xor(values, target, out=values)
        dists = np.bitwise_count(values)
        keep = np.flatnonzero(dists <= radius)
        if keep.shape[0] == 0:
            return brute.empty_hits()
        owner = cells.owner(keep)
        query_index, table = cells.query[owner], cells.table[owner]
        found = dists[keep].astype(np.int32)
        entries = cells.entries[keep]
        own = table == 0
        direct = (query_index[own], entries[own], found[own])
        other = np.flatnonzero(~own)
        query_index, found = query_index[other], found[other]
        codes = store[entries[other]]
        first = self.layout[0]
        near0 = np.bitwise_count(first.keys(codes[None, :]) ^ first.keys(queries[query_index].T))
        missed = np.flatnonzero(near0 > probe.radius0[query_index])  # others: table 0's hits
        if missed.shape[0] == 0:
            return direct
        extra = self._rows_of(words, query_index[missed], codes[missed], found[missed])
        return brute.concat_hits([direct, extra])

    def _rows_of(
        self,
        words: NDArray[np.uint64],
        query_index: NDArray[np.int64],
        codes: NDArray[np.uint64],
        dists: NDArray[np.int32],
    ) -> brute.Hits:
        """Every row holding ``codes[i]``, for each distinct (query, code) pair."""
        if codes.shape[0] <= _FEW_CODES:
            return self._rows_of_few(words, query_index, codes, dists)
        order = np.lexsort((codes, query_index))
        query_index, codes, dists = query_index[order], codes[order], dists[order]
        fresh = np.ones(codes.shape[0], dtype=np.bool_)
        fresh[1:] = (codes[1:] != codes[:-1]) | (query_index[1:] != query_index[:-1])
        query_index, codes, dists = query_index[fresh], codes[fresh], dists[fresh]
        buckets = self.layout[0].keys(codes[None, :])
        starts = self.offsets[buckets].astype(np.int64)
        counts = self.offsets[buckets + 1].astype(np.int64) - starts
        pair, rows = expand(starts, counts)
        match = np.flatnonzero(words[0, rows] == codes[pair])
        pair = pair[match]
        return query_index[pair], rows[match], dists[pair]

    def _rows_of_few(
        self,
        words: NDArray[np.uint64],
        query_index: NDArray[np.int64],
        codes: NDArray[np.uint64],
        dists: NDArray[np.int32],
    ) -> brute.Hits:
        """:meth:`_rows_of` for a handful of codes: one table-0 bucket slice per pair."""
        first = self.layout[0]
        found = zip(query_index.tolist(), codes.tolist(), dists.tolist(), strict=True)
        pairs = {(q, code): dist for q, code, dist in found}  # a pair's distance is unique
        parts: list[brute.Hits] = []
        for (q, code), dist in pairs.items():
            bucket = (code >> first.shift) & ((1 << first.length) - 1)
            start, end = int(self.offsets[bucket]), int(self.offsets[bucket + 1])
            rows = np.flatnonzero(words[0, start:end] == np.uint64(code)) + start
            parts.append((np.full(rows.shape[0], q), rows, np.full(rows.shape[0], dist, np.int32)))
        return brute.concat_hits(parts)


@dataclass(frozen=True, slots=True)
class _Cells:
    """The non-empty probed buckets of a batch, expanded into candidate entries.

    Cell ``i`` is bucket ``entries[ends[i] - lengths[i]:ends[i]]``, probed for query
    ``query[i]`` in table ``table[i]``.
    """

    query: NDArray[np.int64]
    table: NDArray[np.intp]
    lengths: NDArray[np.int64]
    ends: NDArray[np.int64]
    entries: NDArray[np.int64]

    @classmethod
    def of(cls, probe: Probe) -> _Cells:
        flat = probe.counts.ravel()
        nonzero = np.flatnonzero(flat)
        lengths = flat[nonzero]
        ends = np.cumsum(lengths)
        entries = flatten(probe.starts.ravel()[nonzero], ends)
        width = probe.counts.shape[1]
        table = probe.column_table[nonzero % width]
        return cls(nonzero // width, table, lengths, ends, entries)

    def owner(self, candidates: NDArray[np.intp]) -> NDArray[np.intp]:
        """Cell of each candidate (indices into ``entries``)."""
        return np.searchsorted(self.ends, candidates, side="right")

    def subset(self, candidates: NDArray[np.intp]) -> _Cells:
        """The cells restricted to ``candidates`` (sorted indices into ``entries``)."""
        owner = self.owner(candidates)
        cells, lengths = np.unique(owner, return_counts=True)
        return _Cells(
            self.query[cells],
            self.table[cells],
            lengths,
            np.cumsum(lengths),
            self.entries[candidates],
        )


def _skew(counts: NDArray[np.int64]) -> float:
    """Excess bucket crowding: about 1 for uniform codes (Poisson buckets), more if skewed.

    ``(sum(c**2) / n - 1) / (n / buckets)``: the expected number of *other* codes in a
    stored code's bucket, relative to the uniform expectation.
    """
    n = float(counts.sum())
    if n < 2:
        return 0.0
    crowd = float(np.dot(counts, counts)) / n - 1.0
    return float(crowd / (n / counts.shape[0]))


def _cumulative(counts: NDArray[np.int64]) -> NDArray[np.int64]:
    """CSR offsets (len(counts) + 1,) from bucket sizes."""
    offsets = np.zeros(counts.shape[0] + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    return offsets


@dataclass(frozen=True, slots=True)
class _Scratch:
    """Reusable length-n uint64 buffers (``rows`` holds 0..n-1): no allocation per table."""

    a: NDArray[np.uint64]
    rows: NDArray[np.uint64]

    def keys(self, words: NDArray[np.uint64], sub: Substring) -> NDArray[np.int64]:
        """Substring values of every row, in buffer ``a`` (viewed as int64)."""
        np.right_shift(words[sub.word], np.uint64(sub.shift), out=self.a)
        np.bitwise_and(self.a, np.uint64((1 << sub.length) - 1), out=self.a)
        return self.a.view(np.int64)

    def bucket_offsets(self, words: NDArray[np.uint64], sub: Substring) -> NDArray[np.int64]:
        """CSR offsets of table ``sub`` over rows already sorted by it."""
        return _cumulative(np.bincount(self.keys(words, sub), minlength=1 << sub.length))

    def fill_positions(
        self, words: NDArray[np.uint64], sub: Substring, out: NDArray[np.uint32]
    ) -> NDArray[np.int64]:
        """Rows sorted by (substring, row) into ``out``; return bucket sizes."""
        counts = np.bincount(self.keys(words, sub), minlength=1 << sub.length)
        np.left_shift(self.a, np.uint64(32), out=self.a)
        np.bitwise_or(self.a, self.rows, out=self.a)
        self.a.sort()
        out[:] = self.a  # uint64 -> uint32 keeps the low half: the row
        return counts

    def fill_copies(
        self, row: NDArray[np.uint64], sub: Substring, out: NDArray[np.uint64]
    ) -> NDArray[np.int64]:
        """Codes sorted by ``sub`` (rotated to the top for the sort) into ``out``; bucket sizes."""
        turn = rotation(sub)
        self._rotate(row, turn, out)
        out.sort()
        np.right_shift(out, np.uint64(64 - sub.length), out=self.a)
        counts = np.bincount(self.a.view(np.int64), minlength=1 << sub.length)
        self._rotate(out, (64 - turn) % 64, out)  # back to the codes' own bit order
        return counts

    def _rotate(self, row: NDArray[np.uint64], turn: int, out: NDArray[np.uint64]) -> None:
        """``out = rotate_left(row, turn)`` (``out`` may be ``row``) using buffer ``a``."""
        if turn == 0:
            if out is not row:
                out[:] = row
            return
        np.right_shift(row, np.uint64(64 - turn), out=self.a)
        np.left_shift(row, np.uint64(turn), out=out)
        np.bitwise_or(out, self.a, out=out)


def _unique_pairs(hits: brute.Hits, n: int) -> brute.Hits:
    """Hits with each (query, row) pair once."""
    query_index, rows, dists = hits
    if rows.shape[0] < 2:
        return hits
    _, first = np.unique(query_index * n + rows, return_index=True)
    return query_index[first], rows[first], dists[first]
