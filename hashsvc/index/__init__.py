"""In-memory Hamming-distance index over fixed-length perceptual hash codes.

This package owns matching of stored codes (64-bit pHash, 256-bit PDQ, any multiple of
64 bits) against query codes by Hamming radius: the :class:`HammingIndex` facade
(validation, thread-safe copy-on-write storage), byte/word packing (:mod:`.codes`) and
the exhaustive search kernel (:mod:`.brute`). It knows nothing of persistence, HTTP or
hash computation.
"""

from hashsvc.index.hamming import HammingIndex

__all__ = ["HammingIndex"]
