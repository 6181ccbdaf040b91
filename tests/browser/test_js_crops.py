"""The page's crop hashes (crops.js) in Chromium on raw pixels: the same boxes as
``hashsvc.signals.crops.crop_boxes`` and the same codes and qualities as
``victim_crop_hashes``, bit for bit, on the fixture photos and on odd sizes; and how the
payload fits crop hashes under the per-case limit."""

from __future__ import annotations

import numpy as np
from PIL import Image

from hashsvc.config import Settings
from hashsvc.signals.crops import CROPS, MIN_CROP_SIDE, crop_boxes, victim_crop_hashes
from tests.browser.conftest import WebPage
from tests.browser.media import PHOTOS
from tests.browser.test_js_hashers import Pixels, rgba_b64, run

BOX_SIZES = [
    (1, 1),
    (7, 3),
    (99, 99),
    (100, 99),
    (100, 100),
    (101, 333),
    (640, 427),
    (3000, 100),
    (100, 2999),
    (4032, 3024),
    (1_000_003, 999_999),
]
# Odd shapes for the codes: too small, the smallest cropped, huge aspect ratios, primes.
CODE_SIZES = [(1, 1), (7, 3), (99, 500), (100, 100), (2000, 100), (101, 1499), (331, 211)]


def odd_pictures() -> list[tuple[str, Pixels]]:
    rng = np.random.default_rng(11)
    out = []
    for width, height in CODE_SIZES:
        small = rng.integers(0, 256, size=(max(2, height // 16), max(2, width // 16), 3))
        smooth = Image.fromarray(small.astype(np.uint8)).resize(
            (width, height), Image.Resampling.BILINEAR
        )
        out.append((f"smooth {width}x{height}", np.asarray(smooth)))
    return out


def python_crops(rgb: Pixels) -> list[dict[str, object]]:
    return [
        {"variant": h.variant, "pdq": h.code.hex(), "quality": h.quality}
        for h in victim_crop_hashes(Image.fromarray(rgb))
    ]


def test_crop_boxes_equal_python(web: WebPage) -> None:
    page = web.open("/")
    got = run(
        page,
        """async (m, sizes) => ({
            boxes: sizes.map(([w, h]) => m.crops.cropBoxes(w, h)),
            crops: m.crops.CROPS, minSide: m.crops.MIN_CROP_SIDE,
        })""",
        BOX_SIZES,
    )
    assert got["minSide"] == MIN_CROP_SIDE
    assert got["crops"] == [[c.keep, c.anchor] for c in CROPS]
    for (width, height), boxes in zip(BOX_SIZES, got["boxes"], strict=True):
        expected = [{"variant": v, "box": list(box)} for v, box in crop_boxes(width, height)]
        assert boxes == expected, (width, height)


def test_crop_hashes_are_bit_exact(web: WebPage) -> None:
    page = web.open("/")
    cases: list[tuple[str, Pixels]] = []
    for name in sorted(PHOTOS):
        with Image.open(PHOTOS[name]) as image:
            cases.append((name, np.asarray(image.convert("RGB"))))
    cases += odd_pictures()
    total = 0
    for name, rgb in cases:
        got = run(
            page,
            """async (m, [w, h, data], fromB64) => m.crops.cropHashes(fromB64(data), w, h)""",
            [rgb.shape[1], rgb.shape[0], rgba_b64(rgb)],
        )
        expected = python_crops(rgb)
        assert got == expected, name
        if min(rgb.shape[:2]) < MIN_CROP_SIDE:
            assert got == [], name
        total += len(got)
    assert total >= len(PHOTOS) * 4  # photos keep most of their crops


def test_payload_fits_crop_hashes_under_the_limit(web: WebPage) -> None:
    page = web.open("/")
    result = run(
        page,
        """async (m) => {
            const code = (n) => n.toString(16).padStart(64, "0");
            const picture = (n, crops) => ({
                status: "ready", kind: "image",
                frames: [{ pdq: code(n), quality: 90, phash: n.toString(16).padStart(16, "0"),
                           crops: Array.from({ length: crops }, (_, k) => ({
                               variant: `crop-${k}`, pdq: code(1000 * n + k + 1), quality: 80,
                           })) }],
            });
            const items = [picture(1, 6), picture(2, 6), picture(3, 2)];
            const video = { status: "ready", kind: "video",
                            frames: [{ pdq: code(9), quality: 90, phash: "9".repeat(16) }] };
            const full = m.payload.casePayload([...items, video]);
            const tight = m.payload.casePayload([...items, video], { maxHashes: 10 });
            const dup = m.payload.casePayload([picture(1, 6), picture(1, 6)]);
            return {
                limit: m.payload.MAX_HASHES_PER_CASE,
                full: [full.count, full.body.hashes.length, full.sources.map((s) => s.crop)],
                tight: [tight.count, tight.body.hashes.map((h) => h.hash)],
                dup: dup.count,
                accepted: m.payload.acceptedLimit(
                    "hashes and videos[].frames together: 16 hashes in one request; "
                    + "at most 3 are accepted"),
                code: [code(1), code(2), code(3), code(1001), code(2001), code(3001), code(1002)],
            };
        }""",
    )
    assert result["limit"] == Settings().max_hashes_per_case
    # 3 pictures x 2 full hashes + 14 crops in "hashes", the video's 2 in "videos"
    assert result["full"][0] == 6 + 14 + 2
    assert result["full"][1] == 6 + 14
    assert result["full"][2] == [None] * 6 + [0, 0, 0, 1, 1, 1] + [2, 2, 3, 3, 4, 4, 5, 5]
    # under a limit of 10: every full hash (8 with the video's), then the first crop of the
    # first two pictures
    count, hashes = result["tight"]
    c = result["code"]
    assert count == 10
    assert hashes[-2:] == [c[3], c[4]]
    assert c[0] in hashes
    assert c[5] not in hashes
    assert c[6] not in hashes
    assert result["dup"] == 2 + 6  # the same picture twice: its hashes once
    assert result["accepted"] == 3
