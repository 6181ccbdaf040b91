"""The page's hashes, computed in Chromium through the real page (file input, worker, decode,
JavaScript PDQ and pHash), agree with the server's Python hashers for every fixture photo, its
everyday and hard variants, and more formats and orientations; so do the extra PDQ hashes of
crops of each picture (``victim_crop_hashes``)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import WebPage
from tests.browser.hashes import hamming, python_crop_hashes, python_hashes
from tests.browser.media import picture_files

MAX_PDQ_DISTANCE = 4
MAX_PHASH_DISTANCE = 2
MAX_QUALITY_DIFFERENCE = 2
MIN_IDENTICAL_SHARE = 0.9


def distribution(counts: Counter[int], unit: str = " bits", what: str = "files") -> str:
    return ", ".join(f"{value}{unit}: {n} {what}" for value, n in sorted(counts.items()))


def test_browser_hashes_match_python(
    web: WebPage, tmp_path: Path, artifacts: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = picture_files(tmp_path / "pictures")
    page = web.open()

    page.set_input_files("#file-input", [str(path) for path in files])
    items = page.locator("#file-list > li")
    expect(items).to_have_count(len(files))
    expect(page.locator(".file[data-state=queued], .file[data-state=working]")).to_have_count(
        0, timeout=90_000
    )
    browser = {
        row["name"]: row
        for row in page.eval_on_selector_all(
            "#file-list > li",
            """items => items.map(li => ({
                name: li.querySelector('.file-name').textContent,
                state: li.dataset.state, pdq: li.dataset.pdq,
                quality: Number(li.dataset.quality), phash: li.dataset.phash,
                crops: JSON.parse(li.dataset.crops || "[]") }))""",
        )
    }

    pdq_counts: Counter[int] = Counter()
    phash_counts: Counter[int] = Counter()
    quality_counts: Counter[int] = Counter()
    crop_counts: Counter[int] = Counter()
    lines = []
    identical = 0
    crops_identical = crops_total = 0
    for path in files:
        row = browser[path.name]
        assert row["state"] == "ready", (path.name, row)
        expected = python_hashes(path)
        (pdq, quality), (phash, _) = expected["pdq"], expected["phash"]
        assert quality is not None
        d_pdq, d_phash = hamming(pdq, row["pdq"]), hamming(phash, row["phash"])
        d_quality = abs(quality - row["quality"])
        pdq_counts[d_pdq] += 1
        phash_counts[d_phash] += 1
        quality_counts[d_quality] += 1
        identical += d_pdq == d_phash == d_quality == 0
        lines.append(
            f"{path.name}: pdq {d_pdq}, phash {d_phash}, quality {quality}/{row['quality']}"
        )
        assert d_pdq <= MAX_PDQ_DISTANCE, lines[-1]
        assert d_phash <= MAX_PHASH_DISTANCE, lines[-1]
        assert d_quality <= MAX_QUALITY_DIFFERENCE, lines[-1]
        # The crop hashes: the same crops kept, each within the same bounds.
        crops = {c["variant"]: (c["pdq"], c["quality"]) for c in row["crops"]}
        expected_crops = python_crop_hashes(path)
        assert set(crops) == set(expected_crops), (path.name, crops, expected_crops)
        for variant, (code, crop_quality) in expected_crops.items():
            assert crop_quality is not None
            d_crop = hamming(code, crops[variant][0])
            d_crop_quality = abs(crop_quality - crops[variant][1])
            crop_counts[d_crop] += 1
            crops_total += 1
            crops_identical += d_crop == d_crop_quality == 0
            assert d_crop <= MAX_PDQ_DISTANCE, (path.name, variant, d_crop)
            assert d_crop_quality <= MAX_QUALITY_DIFFERENCE, (path.name, variant)

    report = "\n".join(
        [
            f"Browser (Chromium) vs Python hashes over {len(files)} files",
            f"PDQ Hamming distance: {distribution(pdq_counts)}",
            f"pHash Hamming distance: {distribution(phash_counts)}",
            f"PDQ quality difference: {distribution(quality_counts, unit='')}",
            f"identical on both signals and quality: {identical}/{len(files)}",
            f"crop PDQ Hamming distance: {distribution(crop_counts, what='crops')}",
            f"crop hashes identical (code and quality): {crops_identical}/{crops_total}",
            "",
            *lines,
        ]
    )
    (artifacts / "hash-agreement.txt").write_text(report + "\n")
    with capsys.disabled():
        print("\n" + "\n".join(report.splitlines()[:7]))
    assert identical >= MIN_IDENTICAL_SHARE * len(files), report
    assert crops_total >= 4 * len(files), report
    assert crops_identical >= MIN_IDENTICAL_SHARE * crops_total, report
