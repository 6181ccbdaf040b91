"""The contract every hash algorithm implements: hashing a decoded image, canonical hex
encoding and parsing, and the low-information check that keeps flat or nearly flat
images out of the match index."""

from __future__ import annotations

import string
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from PIL import Image

from hashsvc.errors import InvalidHash, LowInformationHash

_HEX_DIGITS = frozenset(string.hexdigits)

LOW_INFORMATION_MESSAGE = (
    "this {name} hash carries too little information (flat or nearly flat image) "
    "to be matched safely"
)


@dataclass(frozen=True)
class HashResult:
    """One signal's hash of one image: the canonical code and, if the algorithm has one,
    its quality score (0-100)."""

    code: bytes
    quality: int | None


class SignalType(ABC):
    """A perceptual hash algorithm with a fixed bit length, compared by Hamming distance.

    Subclasses set ``name``, ``bits``, ``default_threshold`` (the match distance the
    degenerate-code check uses, equal to the ``Settings`` default) and the inclusive
    range ``min_set_bits``..``max_set_bits`` of set bits a real photograph produces.
    """

    name: str
    bits: int
    default_threshold: int
    min_set_bits: int
    max_set_bits: int
    requires_quality: bool = False

    def __init__(self, degenerate_images: Callable[[], Iterable[Image.Image]]) -> None:
        self._degenerate_images = degenerate_images
        self._degenerate: npt.NDArray[np.uint8] | None = None
        self._lock = threading.Lock()

    @property
    def hex_length(self) -> int:
        """Number of hex characters in a code."""
        return self.bits // 4

    @property
    def byte_length(self) -> int:
        """Number of bytes in a code."""
        return self.bits // 8

    @abstractmethod
    def hash_image(self, image: Image.Image) -> HashResult:
        """Hash a decoded image of any mode."""

    def parse_hex(self, text: str) -> bytes:
        """Parse a submitted hex code: exactly ``hex_length`` hex digits, either case; no
        whitespace, sign, prefix or non-ASCII digit anywhere."""
        stripped = text
        expected = f"expected {self.hex_length} hex characters"
        if not stripped:
            raise InvalidHash(f"invalid {self.name} hash: {expected}, got an empty string")
        bad = next((i for i, char in enumerate(stripped) if char not in _HEX_DIGITS), None)
        if bad is not None:
            raise InvalidHash(
                f"invalid {self.name} hash: {expected}, found non-hex character "
                f"{stripped[bad]!r} at position {bad}"
            )
        if len(stripped) != self.hex_length:
            raise InvalidHash(
                f"invalid {self.name} hash: {expected}, got {len(stripped)} characters"
            )
        return bytes.fromhex(stripped)

    def to_hex(self, code: bytes) -> str:
        """Canonical lowercase hex of a code."""
        self._check_code(code)
        return code.hex()

    def check_information(
        self,
        code: bytes,
        quality: int | None,
        *,
        min_quality: int,
        max_distance: int | None = None,
    ) -> None:
        """Raise ``LowInformationHash`` if the code cannot be matched safely.

        A signal with ``requires_quality`` refuses a missing quality (``InvalidHash``).
        Rejected when the quality (if given) is below ``min_quality``, when the number of
        set bits is outside ``min_set_bits..max_set_bits``, or when the code lies within
        ``max_distance`` (default: ``default_threshold``) of a degenerate code.
        """
        self._check_code(code)
        if self.requires_quality and quality is None:
            raise InvalidHash(
                f"a {self.name} hash must come with its quality score (0-100), which every "
                f"{self.name} hasher computes: it is how flat images are told apart"
            )
        message = LOW_INFORMATION_MESSAGE.format(name=self.name)
        if quality is not None and quality < min_quality:
            raise LowInformationHash(f"{message} (quality {quality}, minimum {min_quality})")
        set_bits = popcount(code)
        if not self.min_set_bits <= set_bits <= self.max_set_bits:
            raise LowInformationHash(
                f"{message} ({set_bits} of {self.bits} bits set, a photograph sets "
                f"{self.min_set_bits} to {self.max_set_bits})"
            )
        radius = self.default_threshold if max_distance is None else max_distance
        distance = self.distance_to_degenerate(code)
        if distance <= radius:
            raise LowInformationHash(
                f"{message} (distance {distance} to the hash of a synthetic flat, "
                f"gradient or two-tone image)"
            )

    def degenerate_codes(self) -> frozenset[bytes]:
        """Codes of the synthetic low-information images (computed once, then cached)."""
        return frozenset(row.tobytes() for row in self._degenerate_matrix())

    def distance_to_degenerate(self, code: bytes) -> int:
        """Smallest Hamming distance from ``code`` to any degenerate code."""
        self._check_code(code)
        row = np.frombuffer(code, dtype=np.uint8)
        distances = np.bitwise_count(self._degenerate_matrix() ^ row).sum(axis=1)
        return int(distances.min())

    def _degenerate_matrix(self) -> npt.NDArray[np.uint8]:
        if self._degenerate is None:
            with self._lock:
                if self._degenerate is None:
                    codes = {self.hash_image(image).code for image in self._degenerate_images()}
                    rows = [np.frombuffer(code, dtype=np.uint8) for code in sorted(codes)]
                    self._degenerate = np.stack(rows)
        return self._degenerate

    def _check_code(self, code: bytes) -> None:
        if len(code) != self.byte_length:
            raise InvalidHash(
                f"invalid {self.name} hash: expected {self.byte_length} bytes, got {len(code)}"
            )


def popcount(code: bytes) -> int:
    """Number of set bits in a code."""
    return int(np.bitwise_count(np.frombuffer(code, dtype=np.uint8)).sum())


def pack_bits(bits: npt.ArrayLike) -> bytes:
    """Pack a sequence of 0/1 values MSB-first into bytes (the ThreatExchange hex order)."""
    return np.packbits(np.asarray(bits, dtype=np.uint8)).tobytes()
