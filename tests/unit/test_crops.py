"""Victim-side crop hashes (hashsvc.signals.crops): the boxes, the hashes, and that they make a
cropped re-upload match that the full-picture hashes miss, without matching other photos."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pdqhash
import pytest
from PIL import Image

from hashsvc.config import Settings
from hashsvc.matching.decide import decide
from hashsvc.signals import hash_all, upload_hashes
from hashsvc.signals.base import pack_bits
from hashsvc.signals.crops import (
    ANCHORS,
    CROPS,
    MIN_CROP_QUALITY,
    MIN_CROP_SIDE,
    Crop,
    crop_box,
    crop_boxes,
    crops_last,
    is_crop,
    victim_crop_hashes,
)
from hashsvc.signals.sides import SignalHash

IMAGES_DIR = Path(__file__).resolve().parents[2] / "fixtures" / "images"
PHOTOS = {path.stem: path for path in sorted(IMAGES_DIR.glob("*"))}
MAX_EXTRA_HASHES = 6
SIZES = [
    (1, 1),
    (7, 3),
    (99, 1000),
    (100, 100),
    (101, 333),
    (640, 427),
    (1000, 100),
    (5000, 120),
    (120, 7919),
    (4032, 3024),
]


def load(name: str) -> Image.Image:
    with Image.open(PHOTOS[name]) as image:
        return image.convert("RGB")


def full_hashes(image: Image.Image) -> list[SignalHash]:
    """The full-picture hashes a victim's device submits (PDQ and pHash)."""
    return [SignalHash(name, r.code, r.quality) for name, r in hash_all(image).items()]


def crop(image: Image.Image, fraction: float, x: float, y: float) -> Image.Image:
    """Cut ``fraction`` of width and height; the kept part's corner at (x, y) in 0..1 of the
    room left (0.5, 0.5: centred)."""
    w, h = image.size
    cw, ch = round(w * (1 - fraction)), round(h * (1 - fraction))
    left, top = round((w - cw) * x), round((h - ch) * y)
    return image.crop((left, top, left + cw, top + ch))


def best_pdq(victim: list[SignalHash], upload: list[SignalHash]) -> int:
    return min(
        int(
            np.bitwise_count(
                np.frombuffer(v.code, np.uint8) ^ np.frombuffer(u.code, np.uint8)
            ).sum()
        )
        for v, u in itertools.product(victim, upload)
        if v.signal == u.signal == "pdq"
    )


def test_constants_follow_the_server() -> None:
    assert Settings().pdq_min_quality == MIN_CROP_QUALITY
    assert len(CROPS) <= MAX_EXTRA_HASHES
    assert len({c.variant for c in CROPS}) == len(CROPS)


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_boxes_are_integer_inside_and_deterministic(width: int, height: int) -> None:
    boxes = crop_boxes(width, height)
    if min(width, height) < MIN_CROP_SIDE:
        assert boxes == []
        return
    assert [variant for variant, _ in boxes] == [c.variant for c in CROPS]
    assert boxes == crop_boxes(width, height)
    for (variant, box), spec in zip(boxes, CROPS, strict=True):
        left, top, right, bottom = box
        assert all(type(v) is int for v in box), variant
        assert 0 <= left < right <= width, (variant, box)
        assert 0 <= top < bottom <= height, (variant, box)
        # keep per cent of each side, rounded down
        assert right - left == width * spec.keep // 100
        assert bottom - top == height * spec.keep // 100
        assert_anchored(box, width, height, spec.anchor)


def assert_anchored(box: tuple[int, int, int, int], width: int, height: int, anchor: str) -> None:
    left, top, right, bottom = box
    horizontal = "l" if "l" in anchor else "r" if "r" in anchor else "c"
    vertical = "t" if "t" in anchor else "b" if "b" in anchor else "c"
    margins = {"l": left, "r": width - right}
    if horizontal == "c":
        assert 0 <= (width - right) - left <= 1, (box, anchor)
    else:
        assert margins[horizontal] == 0
        assert margins[{"l": "r", "r": "l"}[horizontal]] > 0
    margins = {"t": top, "b": height - bottom}
    if vertical == "c":
        assert 0 <= (height - bottom) - top <= 1, (box, anchor)
    else:
        assert margins[vertical] == 0
        assert margins[{"t": "b", "b": "t"}[vertical]] > 0


@pytest.mark.parametrize("anchor", sorted(ANCHORS))
def test_every_anchor(anchor: str) -> None:
    for width, height in SIZES[3:]:
        box = crop_box(width, height, Crop(85, anchor))
        assert box[2] - box[0] == width * 85 // 100
        assert_anchored(box, width, height, anchor)
    with pytest.raises(ValueError, match="anchor"):
        crop_box(500, 500, Crop(85, "x"))


def test_crop_box_large_sizes_exact() -> None:
    # integer arithmetic: no float rounding at sizes where w * 0.85 is inexact
    box = crop_box(1_000_003, 999_999, CROPS[-1])
    assert box[2] - box[0] == 1_000_003 * CROPS[-1].keep // 100


@pytest.mark.parametrize("name", sorted(PHOTOS))
def test_crop_hashes_are_pdq_of_the_boxes(name: str) -> None:
    image = load(name)
    hashes = victim_crop_hashes(image)
    boxes = dict(crop_boxes(*image.size))
    assert 0 < len(hashes) <= MAX_EXTRA_HASHES
    for h in hashes:
        assert h.signal == "pdq"
        assert h.variant.startswith("crop-")
        assert h.quality is not None
        assert h.quality >= MIN_CROP_QUALITY
        bits, quality = pdqhash.compute(np.asarray(image.crop(boxes[h.variant])))
        assert (h.code, h.quality) == (pack_bits(bits), int(quality))
    assert victim_crop_hashes(image.convert("RGBA")) == hashes


def test_flat_and_tiny_pictures_have_no_crop_hashes() -> None:
    assert victim_crop_hashes(Image.new("RGB", (400, 300), (224, 172, 140))) == []
    small = load("coffee").resize((MIN_CROP_SIDE - 1, MIN_CROP_SIDE * 2))
    assert victim_crop_hashes(small) == []
    assert len(victim_crop_hashes(load("coffee").resize((MIN_CROP_SIDE, MIN_CROP_SIDE)))) > 0


def test_flat_crops_are_left_out() -> None:
    """A photo squeezed into the left 15 % of a flat grey picture: the crops that see too
    little of it score below the quality gate and are dropped, the others kept."""
    pixels = np.full((400, 400, 3), 128, dtype=np.uint8)
    pixels[:, :60] = np.asarray(load("coffee").resize((60, 400)))
    canvas = Image.fromarray(pixels)
    kept = {h.variant for h in victim_crop_hashes(canvas)}
    assert 0 < len(kept) < len(CROPS)
    for variant, box in crop_boxes(*canvas.size):
        _, quality = pdqhash.compute(np.asarray(canvas.crop(box)))
        assert (variant in kept) == (quality >= MIN_CROP_QUALITY), variant


# (cut fraction, x, y): the benchmark's centred crops of 10 and 20 %, a side cut by 5 %.
CROPPED_UPLOADS = [(0.10, 0.5, 0.5), (0.20, 0.5, 0.5), (0.05, 0.0, 0.5), (0.05, 1.0, 0.5)]


@pytest.mark.parametrize("name", sorted(PHOTOS))
def test_cropped_upload_matches_through_crop_hashes_only(name: str) -> None:
    image = load(name)
    full = full_hashes(image)
    victim = full + victim_crop_hashes(image)
    for fraction, x, y in CROPPED_UPLOADS:
        upload = upload_hashes(crop(image, fraction, x, y))
        assert best_pdq(full, upload) > 31, (fraction, x, y)
        decision = decide(victim, upload)
        assert decision is not None, (fraction, x, y)
        assert decision.tier == "match", (fraction, x, y)
        assert decision.distances["pdq"] == best_pdq(victim, upload) <= 31


def test_in_between_centred_crops_mostly_match() -> None:
    """A 12 % centred crop is no box: it matches the nearest centred box (10 %) on most
    photos (about 90 % of the corpus), never the full picture."""
    matched = 0
    for name in sorted(PHOTOS):
        image = load(name)
        full = full_hashes(image)
        upload = upload_hashes(crop(image, 0.12, 0.5, 0.5))
        assert best_pdq(full, upload) > 31, name
        matched += best_pdq(full + victim_crop_hashes(image), upload) <= 31
    assert matched >= len(PHOTOS) - 2


def test_crop_hashes_do_not_match_other_photos() -> None:
    names = sorted(PHOTOS)
    victims = {n: full_hashes(load(n)) + victim_crop_hashes(load(n)) for n in names}
    for other in names:
        image = load(other)
        uploads = [upload_hashes(image)] + [
            upload_hashes(crop(image, f, x, y)) for f, x, y in CROPPED_UPLOADS[:2]
        ]
        for name in names:
            if name == other:
                continue
            for upload in uploads:
                assert decide(victims[name], upload) is None, (name, other)
                assert best_pdq(victims[name], upload) > 2 * 31, (name, other)


def test_crops_last_keeps_full_hashes_and_fills_the_room() -> None:
    def picture(n: int, crops: int) -> list[SignalHash]:
        full = [SignalHash("pdq", bytes([n]) * 32), SignalHash("phash", bytes([n]) * 8)]
        return full + [
            SignalHash("pdq", bytes([n, k]) * 16, 90, c.variant)
            for k, c in enumerate(CROPS[:crops])
        ]

    pictures = [picture(1, 6), picture(2, 2), picture(3, 6)]
    everything = crops_last(pictures, 1000)
    assert len(everything) == 6 + 14
    assert [is_crop(h) for h in everything] == [False] * 6 + [True] * 14
    first_ranks = [h.code[:2] for h in everything[6:12]]
    assert first_ranks == [
        b"\x01\x00",
        b"\x02\x00",
        b"\x03\x00",
        b"\x01\x01",
        b"\x02\x01",
        b"\x03\x01",
    ]
    assert crops_last(pictures, 8) == everything[:8]
    assert crops_last(pictures, 3) == everything[:6]  # full hashes are never left out
    assert crops_last([], 10) == []
