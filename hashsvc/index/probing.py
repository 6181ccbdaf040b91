"""Probe plans: which buckets of which tables a search within radius ``r`` visits.

With ``m`` tables and ``r = m q + a``, pigeonhole needs ``sum(rho_t + 1) = r + 1``: ``a + 1``
tables probed within ``q`` and the others within ``q - 1`` (:func:`mih.radii`). Which
tables get ``q`` is free. On uniform codes any choice costs the same, so a static plan is
used. On skewed codes (biased bits, near-duplicate families: :attr:`Tables.skewed`) the
bucket sizes around one query differ by orders of magnitude from table to table, so the
plan is *adaptive*: every table is probed within ``q``, then for each query the ``a + 1``
tables whose outermost ring (distance exactly ``q``) holds the fewest codes keep it and the
others drop it. The bound still holds for every query, and heavy tables are probed least.

Probe column ``j`` looks up bucket ``((q[word[j]] >> shift[j]) & mask[j]) ^ flip[j]`` of
table ``table[j]`` (offsets entry ``base[j]`` plus that value). Columns are grouped by
table, by popcount of ``flip`` within a table, so each table's outer ring (``ring``) is a
contiguous run of columns, ``ring_bounds[0, t]:ring_bounds[1, t]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from hashsvc.index import mih
from hashsvc.index.mih import Substring, flip_masks


@dataclass(frozen=True, slots=True)
class Probe:
    """Buckets to visit for a batch of queries: entries ``starts + [0, counts)``.

    ``starts`` and ``counts`` have shape (q, p); ``column_table`` (p,) is the table of each
    probe column; ``radius0`` (q,) is each query's probe radius in table 0 (-1: unprobed).
    """

    starts: NDArray[np.int64]
    counts: NDArray[np.int64]
    column_table: NDArray[np.intp]
    radius0: NDArray[np.int64]

    def rows(self, keep: NDArray[np.intp]) -> Probe:
        """The probes of queries ``keep`` only."""
        return Probe(self.starts[keep], self.counts[keep], self.column_table, self.radius0[keep])


@dataclass(frozen=True, slots=True)
class Plan:
    """How to probe every table for one radius (see the module docstring).

    Attributes
    ----------
    radii : tuple of int
        Static per-table radii; adaptive plans probe every table within ``q``.
    probes : int
        Probe columns per query.
    adaptive : bool
    q, keep : int
        Adaptive plans keep radius ``q`` in ``keep`` tables per query, ``q - 1`` elsewhere.
    """

    radii: tuple[int, ...]
    probes: int
    adaptive: bool
    q: int
    keep: int
    word: NDArray[np.intp]
    shift: NDArray[np.uint64]
    mask: NDArray[np.uint64]
    flip: NDArray[np.uint64]
    base: NDArray[np.int64]
    table: NDArray[np.intp]
    ring: NDArray[np.bool_]
    ring_bounds: NDArray[np.intp]

    @classmethod
    def make(
        cls,
        layout: tuple[Substring, ...],
        bases: tuple[int, ...],
        n: int,
        radius: int,
        weights: tuple[float, ...],
        skewed: bool,
    ) -> Plan:
        """Plan for ``radius`` over tables ``layout`` of ``n`` codes (see :func:`mih.radii`)."""
        m = len(layout)
        q, a = divmod(radius, m)
        adaptive = skewed and a + 1 < m
        radii = tuple(q for _ in layout) if adaptive else mih.radii(layout, n, radius, weights)
        probes = mih.probe_count(layout, radii)
        used = [t for t, rho in enumerate(radii) if rho >= 0]
        if probes > mih.MAX_PROBES_PER_TABLE:  # never probed: the caller scans instead
            used = []
        masks = [flip_masks(layout[t].length, radii[t]) for t in used]
        sizes = [mask.shape[0] for mask in masks]

        def column(values: list[int], dtype: type[np.generic]) -> NDArray[Any]:
            return np.repeat(np.asarray(values, dtype=dtype), sizes)

        flips = np.concatenate(masks) if masks else np.empty(0, np.int64)
        ends = np.cumsum(sizes, dtype=np.intp)
        rings = [mih.volume(layout[t].length, q - 1) for t in used]  # ring = the last columns
        return cls(
            radii,
            probes,
            adaptive,
            q,
            a + 1,
            column([layout[t].word for t in used], np.intp),
            column([layout[t].shift for t in used], np.uint64),
            column([(1 << layout[t].length) - 1 for t in used], np.uint64),
            flips.astype(np.uint64),
            column([bases[t] for t in used], np.int64),
            column(used, np.intp),
            np.bitwise_count(flips) == q,
            np.stack([ends - np.asarray(sizes, dtype=np.intp) + rings, ends]),
        )

    def lookup(
        self, offsets: NDArray[np.unsignedinteger] | NDArray[np.int64], queries: NDArray[np.uint64]
    ) -> Probe:
        """Bucket ranges of every probe of every query (shape (q, n_words) uint64)."""
        keys = (queries[:, self.word] >> self.shift) & self.mask
        index = (keys ^ self.flip).view(np.int64) + self.base
        starts = offsets[index].astype(np.int64)
        counts = offsets[index + 1].astype(np.int64) - starts
        radius0 = np.full(queries.shape[0], self.radii[0] if self.radii else -1, np.int64)
        if self.adaptive:
            counts, radius0 = self._choose(counts)
        return Probe(starts, counts, self.table, radius0)

    def _choose(self, counts: NDArray[np.int64]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """Per query, drop the outer ring of all but the ``keep`` lightest tables."""
        total = np.zeros((counts.shape[0], counts.shape[1] + 1), dtype=np.int64)
        np.cumsum(counts, axis=1, out=total[:, 1:])
        weight = total[:, self.ring_bounds[1]] - total[:, self.ring_bounds[0]]  # (q, m)
        m = weight.shape[1]
        if self.keep == m - 1:  # drop one ring: the heaviest
            dropped = np.argmax(weight, axis=1)[:, None] == np.arange(m)
        else:
            order = np.argsort(weight, axis=1, kind="stable")
            dropped = np.zeros(weight.shape, dtype=np.bool_)
            np.put_along_axis(dropped, order[:, self.keep :], True, axis=1)
        for t, (lo, hi) in enumerate(self.ring_bounds.T.tolist()):  # rings: contiguous columns
            if counts.shape[0] == 1:
                if dropped[0, t]:
                    counts[0, lo:hi] = 0
            else:
                counts[np.flatnonzero(dropped[:, t]), lo:hi] = 0
        return counts, self.q - dropped[:, 0].astype(np.int64)
