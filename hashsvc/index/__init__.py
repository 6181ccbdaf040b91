"""In-memory, exact Hamming-distance index over fixed-length perceptual hash codes.

This package owns matching of stored codes (64-bit pHash, 256-bit PDQ, any multiple of 64
bits) against query codes by Hamming radius. It knows nothing of persistence, HTTP or hash
computation.

- :mod:`.hamming`: the :class:`HammingIndex` facade: validation, copy-on-write snapshots,
  the delta of recent adds, tombstones and (background) merging.
- :mod:`.segment`: immutable segments and the per-query choice between scanning and
  multi-index probing (a cost model fed by the sizes of the probed buckets).
- :mod:`.brute`: the exhaustive scan (packed uint64 words, XOR + ``np.bitwise_count``,
  cache-sized chunks, pruning on the first half of the words).
- :mod:`.mih`, :mod:`.probing`, :mod:`.tables`, :mod:`.ranges`: multi-index hashing
  (Norouzi, Punjani & Fleet, CVPR 2012): substring layout, pigeonhole probe plans (adaptive
  on skewed data), the tables and candidate verification.
- :mod:`.bitperm`: bit permutations that balance the substrings of biased codes.
- :mod:`.ids`, :mod:`.sorting`, :mod:`.codes`, :mod:`.validate`: compact ids with lookup by
  id, fast argsorts, byte/word packing, argument checks.
"""

from hashsvc.index.hamming import HammingIndex

__all__ = ["HammingIndex"]
