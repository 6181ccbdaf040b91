"""The upload-side views are computed for any decodable picture, however small or odd its
shape (B2 found a tiny GIF that made the screenshot search fail)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from hashsvc.signals import upload_hashes


@settings(max_examples=60, deadline=None)
@given(
    width=st.integers(min_value=1, max_value=90),
    height=st.integers(min_value=1, max_value=90),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
    flat=st.booleans(),
)
def test_upload_hashes_of_any_small_picture(width: int, height: int, seed: int, flat: bool) -> None:
    rng = np.random.default_rng(seed)
    if flat:
        pixels = np.full((height, width, 3), rng.integers(0, 256), dtype=np.uint8)
    else:
        pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    found = upload_hashes(Image.fromarray(pixels))
    assert [h.signal for h in found[:8]] == ["pdq"] * 8
    assert {h.signal for h in found} == {"pdq", "phash"}
    assert all(len(h.code) == (32 if h.signal == "pdq" else 8) for h in found)
