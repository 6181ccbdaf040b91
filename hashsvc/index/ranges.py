"""Vectorised expansion of many short ranges (the bucket contents a probe visits).

``np.repeat`` with per-element counts copies element by element and is several times slower
than a cumulative sum over a sparse array of jumps, which is what these helpers use. Every
range here is non-empty.
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np
from numpy.typing import NDArray

_I = TypeVar("_I", np.int64, np.uint64)


def repeat_runs(values: NDArray[_I], ends: NDArray[np.int64]) -> NDArray[_I]:
    """``np.repeat(values, lengths)`` for lengths >= 1 given as ``ends = cumsum(lengths)``.

    Integer arithmetic wraps around, so the differences and their cumulative sum are exact
    for uint64 values too.
    """
    total = int(ends[-1]) if ends.shape[0] else 0
    out = np.zeros(total, dtype=values.dtype)
    if total:
        out[0] = values[0]
        out[ends[:-1]] = values[1:] - values[:-1]
        np.cumsum(out, out=out)
    return out


def flatten(starts: NDArray[np.int64], ends: NDArray[np.int64]) -> NDArray[np.int64]:
    """Concatenated ``arange(starts[i], starts[i] + lengths[i])``; ``ends = cumsum(lengths)``."""
    total = int(ends[-1]) if ends.shape[0] else 0
    out = np.ones(total, dtype=np.int64)
    if total:
        out[0] = starts[0]
        # range i + 1 starts a jump away from the last entry of range i, which is
        # starts[i] + lengths[i] - 1 = starts[i] + ends[i] - ends[i - 1] - 1
        last = starts[:-1] + ends[:-1] - np.concatenate(([0], ends[:-2])) - 1
        out[ends[:-1]] = starts[1:] - last
        np.cumsum(out, out=out)
    return out


def expand(
    starts: NDArray[np.int64], counts: NDArray[np.int64]
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Flatten ranges ``[starts[i], starts[i] + counts[i])``, skipping empty ones.

    Parameters
    ----------
    starts, counts : ndarray of int64, shape (k,)

    Returns
    -------
    owner, entry : ndarray of int64, shape (counts.sum(),)
        The range (index into ``starts``) and the value of every entry.
    """
    nonzero = np.flatnonzero(counts)
    ends = np.cumsum(counts[nonzero])
    return repeat_runs(nonzero.astype(np.int64), ends), flatten(starts[nonzero], ends)
