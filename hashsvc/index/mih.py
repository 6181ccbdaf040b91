"""Multi-index hashing (Norouzi, Punjani & Fleet, "Fast Search in Hamming Space with
Multi-Index Hashing", CVPR 2012) over packed codes.

Each code is cut into ``m`` disjoint substrings (:class:`Substring`, never crossing a 64-bit
word), and one hash table per substring maps a substring value to the positions of the
stored codes holding it. Pigeonhole: if ``d(x, q) <= r`` and table ``t`` is probed within
radius ``rho_t`` with ``sum(rho_t + 1) > r``, then some table ``t`` has
``d_t(x, q) <= rho_t`` — so probing every value within ``rho_t`` of the query's substring,
in every table, finds every code within ``r`` (a superset; candidates are then verified
exactly). Substrings may leave bits uncovered: the distance on covered bits is at most the
full distance, so the argument still holds.

This module holds the method's arithmetic (layout, probe radii, flip masks); the tables
themselves are in :mod:`.tables`.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import NDArray

MIN_TABLE_SIZE: Final = 32_768
"""Below this many codes no tables are built: a scan is as fast and costs no memory."""

MAX_SUBSTRING_BITS: Final = 22
"""Longest substring: the offsets of one table take ``4 * 2**bits`` bytes."""

MAX_PROBES_PER_TABLE: Final = 1 << 20
"""Probe sets larger than this are never enumerated (a scan is cheaper by then)."""


@dataclass(frozen=True, slots=True)
class Substring:
    """Bits ``[shift, shift + length)`` of word ``word`` (bit 0 is the least significant)."""

    word: int
    shift: int
    length: int

    def keys(self, words: NDArray[np.uint64]) -> NDArray[np.int64]:
        """Substring values of codes.

        Parameters
        ----------
        words : ndarray of uint64, shape (n_words, n) or (n_words,)
            Packed codes, word-major.

        Returns
        -------
        ndarray of int64, shape (n,) or ()
        """
        row = words[self.word] >> np.uint64(self.shift)
        keys: NDArray[np.int64] = (row & np.uint64((1 << self.length) - 1)).astype(np.int64)
        return keys


def layout_for(n: int, n_words: int, min_size: int = MIN_TABLE_SIZE) -> tuple[Substring, ...]:
    """Substrings for ``n`` codes of ``n_words`` words (empty: build no tables).

    Substring length follows Norouzi et al. (about ``log2 n`` bits; 3 substrings per word,
    4 below 2**19 codes of two or more words), capped so that the whole segment stays
    within 3.5 times the raw code bytes plus 8 bytes per id: each table costs ``4 * 2**length``
    bytes of offsets besides its entries (a copy of the codes, 8 bytes per code,
    for one-word codes; a uint32 position otherwise; none for table 0, whose order is the
    segment's own).

    Parameters
    ----------
    n : int
        Number of codes to index.
    n_words : int
        uint64 words per code.
    min_size : int
        Fewer codes than this get no tables.

    Returns
    -------
    tuple of Substring
        Substrings word by word, most significant bits first.
    """
    if n < max(1, min_size):
        return ()
    per_word = 3 if n_words == 1 or n >= 1 << 19 else 4
    m = per_word * n_words
    entry_bytes = 8 if n_words == 1 else 4
    # budget: 3.5x codes + 8 B/id; spent: codes, ids and id order (8 B), table entries
    spare = 3.5 * 8 * n_words * n + 8 * n - 8 * n_words * n - 8 * n - (m - 1) * entry_bytes * n
    cap = min(MAX_SUBSTRING_BITS, int(math.log2(max(2.0, spare / (4 * m)))))
    base, extra = divmod(64, per_word)
    lengths = [min(cap, base + (i < extra)) for i in range(per_word)]
    subs: list[Substring] = []
    for word in range(n_words):
        top = 64
        for length in lengths:
            top -= length
            subs.append(Substring(word, top, length))
    return tuple(subs)


@functools.lru_cache(maxsize=64)
def flip_masks(length: int, radius: int) -> NDArray[np.int64]:
    """Every ``length``-bit value of popcount ``<= radius``, by popcount then value.

    Parameters
    ----------
    length : int
        Substring length in bits (at most :data:`MAX_SUBSTRING_BITS`).
    radius : int
        Probe radius, ``>= 0``.

    Returns
    -------
    ndarray of int64, shape (volume(length, radius),)
        Read-only (cached).
    """
    values = np.arange(1 << length, dtype=np.uint32)
    counts = np.bitwise_count(values)
    masks = values[np.argsort(counts, kind="stable")][: volume(length, radius)]
    out = masks.astype(np.int64)
    out.flags.writeable = False
    return out


def volume(length: int, radius: int) -> int:
    """Number of ``length``-bit values within ``radius`` of a given one (0 if radius < 0)."""
    return sum(math.comb(length, k) for k in range(min(radius, length) + 1))


def radii(
    layout: tuple[Substring, ...], n: int, radius: int, weights: tuple[float, ...]
) -> tuple[int, ...]:
    """Per-table probe radii for a search within ``radius`` (pigeonhole, -1 = skip table).

    With ``m`` tables, ``radius = m * q + a``: ``a + 1`` tables get ``q`` and the others
    ``q - 1``, so ``sum(rho_t + 1) = radius + 1``. The extra unit goes to the tables where
    it adds the least expected work for ``n`` uniform codes: probes plus candidates, a
    candidate of table ``t`` weighing ``weights[t]`` probes.
    """
    m = len(layout)
    q, a = divmod(radius, m)

    def extra_cost(t: int) -> float:
        length = layout[t].length
        per_probe = 1.0 + weights[t] * n / float(1 << length)
        return (volume(length, q) - volume(length, q - 1)) * per_probe

    wide = set(sorted(range(m), key=extra_cost)[: a + 1])
    return tuple(q if t in wide else q - 1 for t in range(m))


def probe_count(layout: tuple[Substring, ...], table_radii: tuple[int, ...]) -> int:
    """Total probes per query for ``table_radii``."""
    return sum(volume(s.length, r) for s, r in zip(layout, table_radii, strict=True))
