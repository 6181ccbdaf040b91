"""Conversion between byte-form hash codes and packed 64-bit words.

A code of ``nbytes`` bytes (the bytes of its hex form, ``bytes.fromhex(hex)``) is packed
into ``nbytes // 8`` words. Each word holds 8 consecutive bytes read big-endian, so word
``k`` equals ``int.from_bytes(code[8 * k : 8 * k + 8], "big")``. The Hamming distance of
two codes equals the summed popcount of the XOR of their words.
"""

from __future__ import annotations

from typing import Final

import numpy as np
from numpy.typing import NDArray

_BIG_ENDIAN_U64: Final = np.dtype(">u8")


def pack(codes_u8: NDArray[np.uint8]) -> NDArray[np.uint64]:
    """Pack byte codes into native uint64 words.

    Parameters
    ----------
    codes_u8 : ndarray of uint8, shape (n, nbytes)
        One code per row; ``nbytes`` must be a positive multiple of 8. Any memory
        layout is accepted.

    Returns
    -------
    ndarray of uint64, shape (n, nbytes // 8)
        New C-contiguous array; word ``k`` of a row is bytes ``8k .. 8k + 7`` big-endian.

    Raises
    ------
    ValueError
        If the array is not 2-D uint8 with a positive multiple of 8 bytes per row.
    """
    if codes_u8.dtype != np.uint8 or codes_u8.ndim != 2 or not _valid_nbytes(codes_u8.shape[1]):
        raise ValueError(
            "pack: expected uint8 array of shape (n, 8 * k) with k >= 1, "
            f"got {codes_u8.dtype} array of shape {codes_u8.shape}"
        )
    big_endian = np.ascontiguousarray(codes_u8).view(_BIG_ENDIAN_U64)
    return big_endian.astype(np.uint64)


def unpack(words: NDArray[np.uint64]) -> NDArray[np.uint8]:
    """Inverse of :func:`pack`.

    Parameters
    ----------
    words : ndarray of uint64, shape (n, n_words)
        Packed codes, any memory layout.

    Returns
    -------
    ndarray of uint8, shape (n, 8 * n_words)
        New C-contiguous array of byte codes.

    Raises
    ------
    ValueError
        If the array is not 2-D uint64 with at least one word per row.
    """
    if words.dtype != np.uint64 or words.ndim != 2 or words.shape[1] < 1:
        raise ValueError(
            "unpack: expected uint64 array of shape (n, k) with k >= 1, "
            f"got {words.dtype} array of shape {words.shape}"
        )
    big_endian = np.ascontiguousarray(words, dtype=_BIG_ENDIAN_U64)
    return big_endian.view(np.uint8).copy()


def _valid_nbytes(nbytes: int) -> bool:
    return nbytes > 0 and nbytes % 8 == 0
