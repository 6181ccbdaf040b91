"""B5 (CI form): coverage-guided fuzzing of the decode path with atheris.

Runs ``python -m tests.security.fuzz_decode`` (see that module for what one input goes through)
for ``HASHSVC_FUZZ_SECONDS`` (default 120) with ``-timeout=5 -rss_limit_mb=1024`` and asserts:
exit code 0, no crash/timeout/oom/leak artifact, and that it really fuzzed (every seed loaded,
enough executions, coverage reported): a harness that fails to start, rejects everything
before the decoders or runs a handful of inputs must not pass. The full form is ``make fuzz``
(1,800 s). Past findings replay in ``test_b5_regressions`` (none so far).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import Counter
from io import BytesIO
from pathlib import Path

import pytest
from PIL import Image

from hashsvc.config import Settings
from hashsvc.errors import MediaRejected
from hashsvc.hashing import hash_bytes
from hashsvc.media import ALLOWED_FORMATS, is_video
from tests.security.fuzz_decode import SUMMARY_PREFIX, seeds

ROOT = Path(__file__).resolve().parents[2]
SECONDS = int(os.environ.get("HASHSVC_FUZZ_SECONDS", "120"))
# The decode path runs about 1,000-3,000 inputs/s on one core of the 2-core CI machine; 20/s
# would mean the harness is stuck in slow inputs or barely running.
MIN_EXECS_PER_S = 20
# Instrumented edges reached from the seeds alone are about 1,000 (hashsvc.media, Pillow's
# plugins, imagehash); far fewer means the instrumentation or the seeds are broken.
MIN_COVERAGE = 500


def test_seeds_cover_every_allowed_format() -> None:
    """The seeds the fuzzer starts from decode and hash, in every allowed image format, and
    the video seeds are sniffed as video: fuzzing starts from inputs that reach the decoders.
    The hostile seeds are rejected cleanly."""
    settings = Settings()
    decoded: Counter[str] = Counter()
    videos = 0
    for name, data in seeds():
        if name.startswith("hostile-"):
            with pytest.raises(MediaRejected):
                hash_bytes(data, settings)
        elif is_video(data[:64]):
            videos += 1
        else:
            assert hash_bytes(data, settings), name
            fmt = Image.open(BytesIO(data)).format
            decoded["JPEG" if fmt == "MPO" else str(fmt)] += 1
    assert set(decoded) == set(ALLOWED_FORMATS), decoded
    assert videos == 6, "one seed per allowed video container suffix"


@pytest.mark.timeout(SECONDS + 180)
def test_decode_path_survives_coverage_guided_fuzzing(tmp_path: Path) -> None:
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.security.fuzz_decode",
            f"-max_total_time={SECONDS}",
            f"-artifact_prefix={artifacts}/",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        errors="replace",
        timeout=SECONDS + 150,
        check=False,
    )
    output = result.stdout + result.stderr
    tail = output[-6000:]
    summaries = [line for line in output.splitlines() if line.startswith(SUMMARY_PREFIX)]
    assert summaries, f"the harness printed no summary:\n{tail}"
    print(summaries[-1])  # visible with -s: execs, exec/s, cov, ft, corpus

    assert result.returncode == 0, f"fuzzer exit code {result.returncode}:\n{tail}"
    assert sorted(p.name for p in artifacts.iterdir()) == [], tail
    assert "Uncaught Python exception" not in output, tail
    assert not re.search(r"ERROR: libFuzzer: (timeout|out-of-memory|deadly signal)", output)

    seeds_loaded = re.search(r"INFO: seed corpus: files: (\d+)", output)
    assert seeds_loaded, tail
    assert int(seeds_loaded[1]) == len(list(seeds()))
    execs = re.search(r"^stat::number_of_executed_units:\s+(\d+)$", output, re.M)
    assert execs, tail
    assert int(execs[1]) >= MIN_EXECS_PER_S * SECONDS, summaries[-1]
    coverage = re.search(r" cov=(\d+) ft=(\d+)", summaries[-1])
    assert coverage, summaries[-1]
    assert int(coverage[1]) >= MIN_COVERAGE, summaries[-1]
