"""Validation of the arguments of :class:`~hashsvc.index.HammingIndex` (clear ValueErrors)."""

from __future__ import annotations

from typing import Any, Final

import numpy as np
from numpy.typing import ArrayLike, NDArray

from hashsvc.index.sorting import argsort_ids

_INT64_MAX: Final = np.iinfo(np.int64).max


def bits(value: Any) -> int:
    """Validate a code length: a positive multiple of 64."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0 or value % 64:
        raise ValueError(f"bits must be a positive multiple of 64, got {value!r}")
    return value


def positive(name: str, value: Any) -> int:
    """Validate a positive integer setting."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def ids(values: ArrayLike) -> NDArray[np.int64]:
    """Validate ids as a 1-D integer array with values in int64 range; return an int64 copy."""
    arr = np.asarray(values)
    if arr.ndim != 1 or arr.dtype.kind not in "iu":
        raise ValueError(
            f"ids: expected 1-D integer array of shape (n,), got {arr.dtype} array "
            f"of shape {arr.shape}"
        )
    if not np.can_cast(arr.dtype, np.int64) and arr.size and arr.max() > _INT64_MAX:
        raise ValueError(f"ids: values must fit int64, got maximum {arr.max()} ({arr.dtype})")
    return arr.astype(np.int64)


def codes(values: ArrayLike, nbytes: int, name: str) -> NDArray[np.uint8]:
    """Validate a uint8 array of shape (n, nbytes)."""
    arr = np.asarray(values)
    if arr.dtype != np.uint8 or arr.ndim != 2 or arr.shape[1] != nbytes:
        raise ValueError(
            f"{name}: expected uint8 array of shape (n, {nbytes}), got {arr.dtype} array "
            f"of shape {arr.shape}"
        )
    return arr


def radius(max_distance: Any) -> int:
    """Validate a non-negative integer radius."""
    if isinstance(max_distance, bool | np.bool_) or not isinstance(max_distance, int | np.integer):
        raise ValueError(f"max_distance must be an integer, got {max_distance!r}")
    if max_distance < 0:
        raise ValueError(f"max_distance must be >= 0, got {max_distance}")
    return int(max_distance)


def sort_unique(
    new_ids: NDArray[np.int64], codes_u8: NDArray[np.uint8]
) -> tuple[NDArray[np.int64], NDArray[np.uint8]]:
    """Sort an add's ids (with their codes) and reject duplicate ids.

    Parameters
    ----------
    new_ids : ndarray of int64, shape (n,)
    codes_u8 : ndarray of uint8, shape (n, nbytes)

    Returns
    -------
    ids : ndarray of int64, shape (n,)
        Strictly increasing.
    codes : ndarray of uint8, shape (n, nbytes)
        Rows in the same order.

    Raises
    ------
    ValueError
        If the lengths differ or an id appears twice.
    """
    if codes_u8.shape[0] != new_ids.shape[0]:
        raise ValueError(
            f"codes: expected shape ({new_ids.shape[0]}, {codes_u8.shape[1]}) to match "
            f"ids of shape {new_ids.shape}, got shape {codes_u8.shape}"
        )
    order = argsort_ids(new_ids)
    sorted_ids = new_ids[order]
    repeated = sorted_ids[1:] == sorted_ids[:-1]
    if repeated.any():
        duplicates = np.unique(sorted_ids[1:][repeated])[:10].tolist()
        raise ValueError(f"ids: duplicate ids in one add: {duplicates}")
    return sorted_ids, codes_u8[order]
