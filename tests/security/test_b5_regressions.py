"""B5 regressions: every input the decode-path fuzzer (``tests/security/fuzz_decode.py``) has
reported, replayed through ``decode_image`` with the production limits and the fuzzer's
budget (5 s, 1,024 MB of RSS), each in a fresh process so its peak memory is its own.

Findings so far:

* ``gif-canvas-12048x3072`` (out-of-memory after 19 s of a 90 s run with ``HASHSVC_FUZZ_VIDEO=1``,
  116 bytes): a 16x12 GIF frame on a 12048x3072 logical screen (37 Mpx, under the 50 Mpx
  limit). ``decode_image`` handles it cleanly (0.2 s, about 210 MB: an RGB canvas, as the
  GIF asks); the memory went to hashing the 37 Mpx result (6.3 s, 1.3 GB peak), as for any
  legitimate image of that size (an 8000x6000 JPEG: 6 s, 1.4 GB). Not a decoder bug:
  production hashes in the sandbox (measured: 4.3 s for this input, 12.3 s for the 48 Mpx
  JPEG, both within its limits), and the harness now hashes only decoded images up to 4 Mpx.
  What remains is cost amplification (116 bytes buy the CPU time of a 48 Mpx photo), left to
  the owners of ``hashsvc.media`` (e.g. a pixels-per-input-byte bound); this test pins the
  decode side: it must stay a clean decode within the budget (or become a clean
  ``MediaRejected`` if such a bound is added).
* ``bmp-rle-1381653x32`` (timeout, 7 s, after about 105 s of a 600 s run, 326 bytes): a BMP
  claiming 1381653x32 pixels (44 Mpx) with RLE compression. Pillow decodes BMP RLE in
  Python (``BmpRleDecoder``), padding each end-of-line code one byte per loop iteration, so
  a few hundred bytes cost tens of millions of Python iterations; under atheris's
  instrumentation of Pillow that took over 5 s, uninstrumented 1.8 s, then a clean
  ``corrupt`` rejection (not enough data). Fixed: RLE BMPs have their own pixel cap
  (``MAX_RLE_BMP_PIXELS``, 2048x2048), checked from the header, so this file is now refused as
  ``too_many_pixels`` before any pixel is decoded (tests/unit/test_media.py covers real RLE8
  and RLE4 files and the cap's boundary).
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest

from fixtures.hostile import gif_huge_screen

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 5.0  # the fuzzer's -timeout
RSS_LIMIT_MB = 1024  # the fuzzer's -rss_limit_mb

FINDINGS: dict[str, bytes] = {
    # The fuzzer's artifact, byte for byte (oom-5286ef02827a0ca452ecc5f19974911b525155ec).
    "gif-canvas-12048x3072": base64.b64decode(
        "R0lGODlhEC8ADACBAAD/AAABAHEAAAAAAAAAAAAAACH/C05FVFNDQVBFMS4wAwEAAAAh+QQACgAAACwAAAAAEA"
        "AMAAAIGQABCBxIsKDBgwgTKlzIsKHDhxAjSpwoMCAAIfkEAQoAAQAsAAAAI0qcKDAgADs="
    ),
    # The same finding minimized: an 8x8 GIF (48 bytes) with its logical screen patched.
    "gif-canvas-12048x3072-minimized": gif_huge_screen(12_048, 3_072),
    # timeout-8af68f8019ba4195b7e2ec51a171f01337ffc601, byte for byte.
    "bmp-rle-1381653x32": base64.b64decode(
        "Qk0+gQAAAAABAAAAAAAoAAAAFRUVACAAAAABAAEAAgAAAAABAADEDgAAxA4AAAIAAAACAADnAAAAAAAAAGlVTImR"
        "kjr/AJwKKw9E1dteWQCMChoKAAAADUlIRFIA/yRJk7T/AAAIYWNUTAAAAAIAAAAA842TcAAAABpmY1RMAAAAAAAA"
        "ADC4UN6xOWEQgQAADd1JREFUeJwt10mvnudBBuBnHt7xm89MAAAAAgAAAADzjZNwAAAAGmZjVEwAAAAAAAAAMLhQ"
        "3rEAAA3dSURBVHicLddJr57nQQbgZx7e8ZvPfOzjYzt27SdtKa2gDKoQCBSK2LDo3+AP8Cv4CV10ywIWbYVAqlSa"
        "kpYmceLEjn0GH59v/t75L3mfkUWqW7rXl3Svbviv//LPIVjJI+sd6Ddhu6XXqgfEI3H29FEkZa96q5u6AAA="
    ),
}
# A clean decode gives the RGB canvas the header declares; anything else must be rejected.
DECODED_SIZE = {
    "gif-canvas-12048x3072": [12_048, 3_072],
    "gif-canvas-12048x3072-minimized": [12_048, 3_072],
}
REJECTED_AS = {"bmp-rle-1381653x32": "too_many_pixels"}  # from the header, nothing decoded

_REPLAY = """
import json, resource, sys, time
from hashsvc.config import Settings
from hashsvc.errors import MediaRejected
from hashsvc.media import decode_image
data = sys.stdin.buffer.read()
settings = Settings()
started = time.perf_counter()
try:
    image = decode_image(
        data, max_bytes=settings.max_upload_bytes, max_pixels=settings.max_image_pixels
    )
    outcome = {"mode": image.mode, "size": list(image.size)}
except MediaRejected as error:
    outcome = {"rejected": error.reason}
outcome["seconds"] = time.perf_counter() - started
outcome["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
print(json.dumps(outcome))
"""


def replay(data: bytes) -> dict[str, object]:
    """Decode ``data`` in a fresh interpreter; any exception but MediaRejected fails here."""
    result = subprocess.run(
        [sys.executable, "-c", _REPLAY],
        input=data,
        capture_output=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-3000:]
    outcome: dict[str, object] = json.loads(result.stdout.decode().splitlines()[-1])
    return outcome


@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", sorted(FINDINGS))
def test_finding_decodes_cleanly_within_the_fuzzing_budget(name: str) -> None:
    outcome = replay(FINDINGS[name])
    print(f"\nB5 regression {name}: {outcome}")
    assert isinstance(outcome["seconds"], float)
    assert outcome["seconds"] < TIMEOUT_S, outcome
    assert isinstance(outcome["peak_rss_mb"], int)
    assert outcome["peak_rss_mb"] < RSS_LIMIT_MB, outcome
    if name in DECODED_SIZE:
        assert outcome.get("mode") == "RGB", outcome
        assert outcome["size"] == DECODED_SIZE[name], outcome
    else:
        assert outcome.get("rejected") == REJECTED_AS[name], outcome
