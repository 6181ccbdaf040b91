"""Unit checks of the page's JavaScript modules, run in Chromium on raw pixels (no decoding):
PDQ and the quality score bit-exact against pdqhash, the Lanczos resize byte-exact against
Pillow, pHash bit-exact against imagehash; the low-information rule, the payload and the video
sampling plan."""

from __future__ import annotations

import base64
from typing import Any

import imagehash
import numpy as np
import numpy.typing as npt
import pdqhash
from PIL import Image
from playwright.sync_api import Page

from hashsvc.config import Settings
from hashsvc.signals import SIGNALS
from hashsvc.signals.base import pack_bits
from tests.browser.conftest import WebPage

SIZES = [(5, 5), (64, 64), (37, 101), (333, 517), (1000, 9), (640, 427)]

Pixels = npt.NDArray[np.uint8]


def pictures() -> list[tuple[str, Pixels]]:
    """Noise, smooth noise and blocks at awkward sizes, as H x W x 3 arrays."""
    rng = np.random.default_rng(7)
    out = []
    for width, height in SIZES:
        noise = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
        out.append((f"noise {width}x{height}", noise))
        small = rng.integers(0, 256, size=(max(2, height // 8), max(2, width // 8), 3))
        smooth = Image.fromarray(small.astype(np.uint8)).resize(
            (width, height), Image.Resampling.BILINEAR
        )
        out.append((f"smooth {width}x{height}", np.asarray(smooth)))
    return out


def rgba_b64(rgb: Pixels) -> str:
    alpha = np.full((*rgb.shape[:2], 1), 255, dtype=np.uint8)
    return base64.b64encode(np.concatenate([rgb, alpha], axis=2).tobytes()).decode()


def run(page: Page, script: str, arg: Any = None) -> Any:
    """Evaluate `script`, an async function of (the page's modules, `arg`, a base64 decoder),
    with the modules imported from the page's own assets."""
    return page.evaluate(
        """async (arg) => {
            const names = [
                "pdq", "phash", "resample", "lowinfo", "payload", "video", "hashing", "crops",
            ];
            const modules = {};
            for (const name of names) { modules[name] = await import(`/assets/${name}.js`); }
            const fromB64 = (text) => Uint8ClampedArray.from(atob(text), (c) => c.charCodeAt(0));
            const script = SCRIPT;
            return script(modules, arg, fromB64);
        }""".replace("SCRIPT", script),
        arg,
    )


def test_pdq_and_phash_are_bit_exact_on_raw_pixels(web: WebPage) -> None:
    page = web.open("/")
    cases = pictures()
    got = run(
        page,
        """async (m, cases, fromB64) => cases.map(([w, h, data]) => {
            const px = fromB64(data);
            return [m.pdq.pdqHash(px, w, h), m.phash.phash(px, w, h).hash];
        })""",
        [[rgb.shape[1], rgb.shape[0], rgba_b64(rgb)] for _, rgb in cases],
    )
    for (name, rgb), (pdq, phash) in zip(cases, got, strict=True):
        bits, quality = pdqhash.compute(rgb)
        assert pdq == {"hash": pack_bits(bits).hex(), "quality": int(quality)}, name
        expected = pack_bits(imagehash.phash(Image.fromarray(rgb)).hash.flatten()).hex()
        assert phash == expected, name


def test_lanczos_resize_and_grey_match_pillow(web: WebPage) -> None:
    page = web.open("/")
    rng = np.random.default_rng(3)
    shapes = [(640, 427, 32, 32), (31, 17, 32, 32), (100, 100, 32, 32), (97, 300, 13, 41)]
    for width, height, out_w, out_h in shapes:
        rgb = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
        grey = Image.fromarray(rgb).convert("L")
        expected = np.asarray(grey.resize((out_w, out_h), Image.Resampling.LANCZOS))
        got_grey, got_small = run(
            page,
            """async (m, [w, h, ow, oh, data], fromB64) => {
                const grey = m.resample.greyFromRgba(fromB64(data), w, h);
                const small = m.resample.resizeLanczos(grey, w, h, ow, oh);
                let text = "";
                for (let i = 0; i < grey.length; i += 4096) {
                    text += String.fromCharCode(...grey.subarray(i, i + 4096));
                }
                return [btoa(text), Array.from(small)];
            }""",
            [width, height, out_w, out_h, rgba_b64(rgb)],
        )
        assert base64.b64decode(got_grey) == grey.tobytes()
        assert got_small == expected.flatten().tolist(), (width, height, out_w, out_h)


def test_low_information_rule_matches_the_server(web: WebPage) -> None:
    page = web.open("/")
    constants = run(
        page,
        """async (m) => ({ quality: m.lowinfo.PDQ_MIN_QUALITY, bits: m.lowinfo.SET_BITS })""",
    )
    assert constants["quality"] == Settings().pdq_min_quality
    for name in ("pdq", "phash"):
        signal = SIGNALS[name]
        assert constants["bits"][name] == {
            "min": signal.min_set_bits,
            "max": signal.max_set_bits,
            "bits": signal.bits,
        }
    flat = np.full((120, 90, 3), 128, dtype=np.uint8)
    verdicts = run(
        page,
        """async (m, [w, h, data], fromB64) => {
            const flat = m.hashing.hashPixels(fromB64(data), w, h);
            const pdq = "f".repeat(32) + "0".repeat(32);
            const check = m.lowinfo.lowInformation;
            return {
                flat: flat.lowInformation,
                photo: check({ pdq, quality: 100, phash: "ffffffff00000000" }),
                unbalanced: check({ pdq, quality: 100, phash: "ff00000000000000" }),
                poor: check({ pdq, quality: 49, phash: "ffffffff00000000" }),
                distance: m.lowinfo.hammingDistance("f0", "0f"),
            };
        }""",
        [90, 120, rgba_b64(flat)],
    )
    assert verdicts["flat"] == {"signal": "pdq", "reason": "quality", "value": 0}
    assert verdicts["photo"] is None
    assert verdicts["unbalanced"] == {"signal": "phash", "reason": "balance", "value": 8}
    assert verdicts["poor"] == {"signal": "pdq", "reason": "quality", "value": 49}
    assert verdicts["distance"] == 8


def test_payload_and_video_plan(web: WebPage) -> None:
    page = web.open("/")
    result = run(
        page,
        """async (m) => {
            const a = { pdq: "a".repeat(64), quality: 90, phash: "1".repeat(16) };
            const b = { pdq: "b".repeat(64), quality: 80, phash: "2".repeat(16) };
            const items = [
                { status: "ready", kind: "image", frames: [a] },
                { status: "refused", kind: "image", frames: [b] },
                { status: "ready", kind: "video", frames: [a, b] },
            ];
            return {
                flat: m.payload.casePayload(items, { groupVideoFrames: false }),
                grouped: m.payload.casePayload(items).body,
                position: m.payload.refusedPosition("hashes[3]: this pdq hash carries"),
                none: m.payload.refusedPosition("something else"),
                grouping: m.payload.GROUP_VIDEO_FRAMES,
                times: [m.video.sampleTimes(0.4), m.video.sampleTimes(3.5),
                        m.video.sampleTimes(Infinity), m.video.sampleTimes(3600).length],
            };
        }""",
    )
    a_items = [
        {"signal": "pdq", "hash": "a" * 64, "quality": 90},
        {"signal": "phash", "hash": "1" * 16},
    ]
    b_items = [
        {"signal": "pdq", "hash": "b" * 64, "quality": 80},
        {"signal": "phash", "hash": "2" * 16},
    ]
    # A video's frames go as one item by default; duplicates are sent once.
    assert result["grouping"] is True
    assert result["flat"]["body"] == {"hashes": a_items + b_items}
    assert result["flat"]["count"] == 4
    assert [s["frame"] for s in result["flat"]["sources"]] == [0, 0, 1, 1]
    assert result["grouped"] == {"hashes": a_items, "videos": [{"frames": b_items}]}
    assert result["position"] == 3
    assert result["none"] is None
    assert result["times"] == [[0], [0, 1, 2, 3], [0], 60]
