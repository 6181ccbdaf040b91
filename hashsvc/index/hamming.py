"""The :class:`HammingIndex` facade: validation, copy-on-write storage, search dispatch."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from hashsvc.index import brute
from hashsvc.index.codes import pack

_INT64_MAX = np.iinfo(np.int64).max


@dataclass(frozen=True, slots=True)
class _Snapshot:
    """Immutable index state; both arrays are read-only and never modified in place."""

    ids: NDArray[np.int64]  # (n,)
    words: NDArray[np.uint64]  # (n_words, n), C-contiguous, word-major

    @classmethod
    def build(cls, ids: NDArray[np.int64], words: NDArray[np.uint64]) -> _Snapshot:
        ids.flags.writeable = False
        words.flags.writeable = False
        return cls(ids=ids, words=words)


class HammingIndex:
    """In-memory set of ``(id, code)`` pairs searchable by Hamming radius.

    Parameters
    ----------
    bits : int
        Code length; a positive multiple of 64 (64 for pHash, 256 for PDQ).
    memory_budget : int
        Working-memory budget in bytes per search, see :func:`brute.chunk_size`.

    Notes
    -----
    Codes are uint8 arrays of shape ``(n, bits // 8)`` holding the bytes of the hex form
    (``bytes.fromhex(hex)``). Ids are unique: adding a present id replaces its code.

    Thread safety is copy-on-write: the state is an immutable snapshot. ``add`` and
    ``remove`` build new arrays under a writer lock and then swap the snapshot reference,
    so a concurrent ``search`` sees either the old or the new state, never a mix, and
    never blocks. Each mutation therefore copies the whole index (O(n)): batch your adds.
    """

    def __init__(self, bits: int = 256, *, memory_budget: int = brute.DEFAULT_MEMORY_BUDGET):
        if isinstance(bits, bool) or not isinstance(bits, int) or bits <= 0 or bits % 64:
            raise ValueError(f"bits must be a positive multiple of 64, got {bits!r}")
        if memory_budget <= 0:
            raise ValueError(f"memory_budget must be positive, got {memory_budget!r}")
        self._bits = bits
        self._memory_budget = memory_budget
        self._write_lock = threading.Lock()
        self._snapshot = _Snapshot.build(
            np.empty(0, dtype=np.int64), np.empty((bits // 64, 0), dtype=np.uint64)
        )

    @property
    def bits(self) -> int:
        """Code length in bits."""
        return self._bits

    @property
    def nbytes_per_code(self) -> int:
        """Bytes per code, ``bits // 8``."""
        return self._bits // 8

    def __len__(self) -> int:
        """Number of live codes."""
        return int(self._snapshot.ids.shape[0])

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
        new_ids = _as_ids(ids)
        new_codes = _as_codes(codes, self.nbytes_per_code, "codes")
        if new_codes.shape[0] != new_ids.shape[0]:
            raise ValueError(
                f"codes: expected shape ({new_ids.shape[0]}, {self.nbytes_per_code}) to match "
                f"ids of shape {new_ids.shape}, got shape {new_codes.shape}"
            )
        unique, counts = np.unique(new_ids, return_counts=True)
        if unique.shape[0] != new_ids.shape[0]:
            raise ValueError(f"ids: duplicate ids in one add: {unique[counts > 1][:10].tolist()}")
        if new_ids.shape[0] == 0:
            return
        new_words = np.ascontiguousarray(pack(new_codes).T)
        with self._write_lock:
            old = self._snapshot
            keep = ~np.isin(old.ids, new_ids)
            self._snapshot = _Snapshot.build(
                np.concatenate([old.ids[keep], new_ids]),
                np.concatenate([old.words[:, keep], new_words], axis=1),
            )

    def remove(self, ids: ArrayLike) -> None:
        """Delete codes by id; unknown ids are ignored.

        Parameters
        ----------
        ids : array_like of integers, shape (n,)
            Any integer dtype whose values fit int64; repeats are allowed.
        """
        gone = _as_ids(ids)
        with self._write_lock:
            old = self._snapshot
            keep = ~np.isin(old.ids, gone)
            if keep.all():
                return
            self._snapshot = _Snapshot.build(old.ids[keep], old.words[:, keep])

    def search(self, queries: ArrayLike, max_distance: int) -> brute.SearchResult:
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
        """
        packed = pack(_as_codes(queries, self.nbytes_per_code, "queries"))
        radius = _as_radius(max_distance)
        snap = self._snapshot
        return brute.search(snap.words, snap.ids, packed, radius, self._memory_budget)


def _as_ids(ids: ArrayLike) -> NDArray[np.int64]:
    """Validate ids as a 1-D integer array with values in int64 range; return int64 copy."""
    arr = np.asarray(ids)
    if arr.ndim != 1 or arr.dtype.kind not in "iu":
        raise ValueError(
            f"ids: expected 1-D integer array of shape (n,), got {arr.dtype} array "
            f"of shape {arr.shape}"
        )
    if not np.can_cast(arr.dtype, np.int64) and arr.size and arr.max() > _INT64_MAX:
        raise ValueError(f"ids: values must fit int64, got maximum {arr.max()} ({arr.dtype})")
    return arr.astype(np.int64)


def _as_codes(codes: ArrayLike, nbytes: int, name: str) -> NDArray[np.uint8]:
    """Validate a uint8 array of shape (n, nbytes)."""
    arr = np.asarray(codes)
    if arr.dtype != np.uint8 or arr.ndim != 2 or arr.shape[1] != nbytes:
        raise ValueError(
            f"{name}: expected uint8 array of shape (n, {nbytes}), got {arr.dtype} array "
            f"of shape {arr.shape}"
        )
    return arr


def _as_radius(max_distance: Any) -> int:
    """Validate a non-negative integer radius."""
    if isinstance(max_distance, bool | np.bool_) or not isinstance(max_distance, int | np.integer):
        raise ValueError(f"max_distance must be an integer, got {max_distance!r}")
    if max_distance < 0:
        raise ValueError(f"max_distance must be >= 0, got {max_distance}")
    return int(max_distance)
