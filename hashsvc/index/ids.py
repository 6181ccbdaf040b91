"""The ids of a segment's rows: compact storage and lookup by id."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, TypeVar

import numpy as np
from numpy.typing import NDArray

from hashsvc.index.sorting import argsort_ids, is_sorted

_SPAN: Final = 1 << 32
_INT64_MAX: Final = (1 << 63) - 1


_A = TypeVar("_A", bound=np.generic)


def _readonly(array: NDArray[_A]) -> NDArray[_A]:
    array.flags.writeable = False
    return array


@dataclass(frozen=True, slots=True)
class IdColumn:
    """Row -> id map of one segment, searchable by id.

    Ids spanning less than 2**32 (sequential ids do) are stored as uint32 offsets from
    ``base``, halving their memory; others as int64.

    Attributes
    ----------
    values : ndarray of uint32 or int64, shape (n,)
        ``id - base`` of each row.
    base : int
        Subtracted from every id.
    order : ndarray of uint32 or intp, shape (n,), or None
        Rows in increasing id order (None: rows are already in id order).
    """

    values: NDArray[np.integer[Any]]
    base: int
    order: NDArray[np.integer[Any]] | None

    @classmethod
    def build(cls, ids: NDArray[np.int64]) -> IdColumn:
        """Column over ``ids`` (shape (n,), unique, any order)."""
        n = ids.shape[0]
        order: NDArray[np.integer[Any]] | None = None
        if not is_sorted(ids):
            perm: NDArray[np.integer[Any]] = argsort_ids(ids)
            order = _readonly(perm.astype(np.uint32) if n < _SPAN else perm)
        base = int(ids.min()) if n else 0
        values: NDArray[np.integer[Any]] = ids
        if n and int(ids.max()) - base < _SPAN:
            values = (ids - base).astype(np.uint32)
        else:
            base = 0
        return cls(_readonly(values), base, order)

    @property
    def size(self) -> int:
        """Number of rows."""
        return int(self.values.shape[0])

    @property
    def nbytes(self) -> int:
        """Bytes held."""
        return int(self.values.nbytes + (self.order.nbytes if self.order is not None else 0))

    def take(self, rows: NDArray[np.integer]) -> NDArray[np.int64]:
        """Ids of ``rows``, int64."""
        out: NDArray[np.int64] = self.values[rows].astype(np.int64)
        return out + self.base

    def all(self) -> NDArray[np.int64]:
        """Every id, in row order, int64."""
        return self.values.astype(np.int64) + self.base

    def find(self, ids: NDArray[np.int64]) -> NDArray[np.int64]:
        """Rows holding any of ``ids`` (absent ids are skipped), sorted and unique."""
        if self.size == 0 or ids.shape[0] == 0:
            return np.empty(0, np.int64)
        if self.values.dtype == np.uint32:
            upper = min(self.base + _SPAN - 1, _INT64_MAX)
            ids = ids[(ids >= self.base) & (ids <= upper)]
        needles = (ids - self.base).astype(self.values.dtype)
        if self.order is None:
            at = np.searchsorted(self.values, needles)
            inside = at < self.size
            rows = at[inside]
        else:  # np.searchsorted(sorter=...) checks the whole sorter on every call: O(n)
            at = _lower_bound(self.values, self.order, needles)
            inside = at < self.size
            rows = self.order[at[inside]].astype(np.int64)
        return np.unique(rows[self.values[rows] == needles[inside]]).astype(np.int64)


def _lower_bound(
    values: NDArray[np.integer[Any]], order: NDArray[np.integer[Any]], needles: NDArray[Any]
) -> NDArray[np.int64]:
    """First rank ``i`` with ``values[order[i]] >= needle``, for each needle (vectorised)."""
    low = np.zeros(needles.shape[0], dtype=np.int64)
    high = np.full(needles.shape[0], values.shape[0], dtype=np.int64)
    for _ in range(int(values.shape[0]).bit_length()):
        active = low < high
        if not active.any():
            break
        mid = (low + high) // 2
        below = values[order[np.minimum(mid, values.shape[0] - 1)]] < needles
        low = np.where(active & below, mid + 1, low)
        high = np.where(active & ~below, mid, high)
    return low
