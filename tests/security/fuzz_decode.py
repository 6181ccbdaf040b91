"""B5: coverage-guided fuzzing of the decode path with atheris (libFuzzer).

Run from the repository root::

    .venv/bin/python -m tests.security.fuzz_decode [libFuzzer flags] [CORPUS_DIR ...]
    .venv/bin/python -m tests.security.fuzz_decode crash-<sha1> ...   # replay inputs
    make fuzz        # -max_total_time=1800

What one input goes through, in process and with the production limits (``Settings()``,
so ``HASHSVC_*`` variables apply as in the service):

1. the container sniffer ``is_video`` on the first bytes, as ``hash_media`` calls it; it must
   answer a ``bool`` and the same one for the 12 bytes ``sample_frames`` sniffs;
2. ``decode_image`` exactly as ``hash_bytes`` calls it (byte, pixel and frame limits,
   format sniffing, Pillow decode of the first frame, EXIF orientation, RGB); the result must
   be RGB. Video-looking inputs go through it too: the image decoder must reject them
   cleanly whatever routed them there;
3. every signal (PDQ, pHash) on the decoded image when it has at most ``HASH_MAX_PIXELS``
   (4 Mpx); codes must have the signal's length. Hashing costs about 0.12 s and 30 MB per
   Mpx on this machine (a legitimate 8000x6000 JPEG: 6 s and 1.4 GB), so at the production
   pixel limit (50 Mpx) it cannot fit the fuzzing budget of 5 s and 1 GB, whatever the
   input; in production it runs in the sandbox (``hashsvc.sandbox``: address-space, CPU
   and wall-clock limits). The hashing code does not branch on the image size, so small
   images exercise all of it. (First finding, in ``test_b5_regressions``: a 116-byte GIF
   whose logical screen is 12048x3072 decodes in 0.2 s, but hashing it took 6.3 s and
   1.3 GB.)
4. only with ``HASHSVC_FUZZ_VIDEO=1``: inputs the sniffer takes for video also go through
   ``sample_frames`` (OpenCV/FFmpeg, which libFuzzer cannot see into: no coverage feedback
   from C) with the production video limits, and every sampled frame is hashed.

``MediaRejected`` (and its subclass ``MediaTooLarge``) is the documented rejection; any other
exception propagates, and libFuzzer reports it as a crash and writes the input to
``crash-<sha1>`` (under ``-artifact_prefix``, default the working directory). Timeouts and
out-of-memory are findings too (``-timeout=5 -rss_limit_mb=1024`` unless given).

Instrumented for coverage: ``hashsvc``, Pillow's Python parts (every plugin, loaded inside
the instrumentation) and ``imagehash``. Pillow's C decoders, libjpeg, libpng, libtiff,
libwebp, pdqhash and FFmpeg are not instrumented: libFuzzer steers by the Python paths
(plugin header parsers, EXIF/TIFF tag parsing, mode handling) and still runs the C code.

Seeds are generated at every run (every allowed image format in several modes and
compressions, small videos in every allowed container, a few hostile files) into a fresh
temporary directory that is deleted afterwards; they are never committed. Without a corpus
directory on the command line that temporary directory is the corpus; with one, new inputs
are kept there and the seeds are read from the temporary directory as a second corpus.

The fuzzer runs in a child process (libFuzzer ends the process with ``exit()``, which skips
Python clean-up); this parent generates the seeds, forwards the child's output, removes
the temporary directory and prints a one-line ``B5 summary:`` (executions, exec/s,
coverage ``cov``/``ft``, corpus, artifacts) that ``test_b5_fuzz`` parses.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

CHILD_FLAG = "--b5-fuzz-child"
VIDEO_ENV = "HASHSVC_FUZZ_VIDEO"
DEFAULT_FLAGS: dict[str, str] = {
    "-timeout": "5",
    "-rss_limit_mb": "1024",
    "-print_final_stats": "1",
}
SNIFF_HEAD = 64  # what hashing.hash_media hands to is_video
HASH_MAX_PIXELS = 4_000_000  # decoded images up to this size are hashed too (see above)

SUMMARY_PREFIX = "B5 summary:"
_STATUS_LINE = re.compile(
    r"^#(?P<execs>\d+)\s+\w+\s+cov: (?P<cov>\d+) ft: (?P<ft>\d+) corp: (?P<corp>\S+)"
    r".*?exec/s: (?P<rate>\d+)"
)
_STAT_LINE = re.compile(r"^stat::(?P<name>\w+):\s+(?P<value>\d+)")
_ARTIFACT_LINE = re.compile(r"Test unit written to (?P<path>\S+)")

Target = Callable[[bytes], None]


# --- the target (child process) -------------------------------------------------------------


def instrumented_target(*, video: bool) -> Target:
    """Import the decode path under atheris instrumentation; return the per-input function."""
    import atheris  # type: ignore[import-untyped]

    with atheris.instrument_imports(include=["hashsvc", "PIL", "imagehash"]):
        from PIL import Image

        # Pillow imports its format plugins lazily, on the first open: load them all now,
        # inside the instrumentation, so their header parsers give coverage too.
        Image.init()
        from hashsvc.config import Settings
        from hashsvc.errors import MediaRejected
        from hashsvc.hashing import ComputedHash, hash_image
        from hashsvc.media import decode_image, is_video, sample_frames
        from hashsvc.media.video import SNIFF_BYTES
        from hashsvc.signals import SIGNALS

    settings = Settings()
    limits = settings.video_limits()

    def check_hashes(hashes: list[ComputedHash]) -> None:
        assert sorted(h.signal for h in hashes) == sorted(SIGNALS), hashes
        for computed in hashes:
            assert len(computed.code) * 8 == SIGNALS[computed.signal].bits, computed

    def one_input(data: bytes) -> None:
        sniffed = is_video(data[:SNIFF_HEAD])
        assert isinstance(sniffed, bool)
        assert sniffed == is_video(data[:SNIFF_BYTES]), "sniffers disagree on the same bytes"
        try:  # as hashing.hash_bytes calls it
            image = decode_image(
                data, max_bytes=settings.max_upload_bytes, max_pixels=settings.max_image_pixels
            )
        except MediaRejected:
            pass
        else:
            assert image.mode == "RGB", image.mode
            if image.width * image.height <= HASH_MAX_PIXELS:
                check_hashes(hash_image(image))
        if video and sniffed:
            try:
                frames = sample_frames(data, limits=limits)
            except MediaRejected:
                return
            assert frames, "sample_frames returned no frame without raising"
            for frame in frames:
                check_hashes(hash_image(frame.image))

    return one_input


def run_child(argv: list[str]) -> None:
    """The fuzzing process: libFuzzer parses ``argv`` and never returns."""
    import atheris

    # Pillow warns about malformed metadata it reads while decoding pixels (decode_image
    # silences it only around header and EXIF parsing); warnings are not findings, and
    # catch_warnings() in decode_image resets the once-per-location registry, so they would
    # flood the log.
    warnings.simplefilter("ignore")
    target = instrumented_target(video=os.environ.get(VIDEO_ENV) == "1")
    atheris.Setup([sys.argv[0], *argv], target)
    atheris.Fuzz()


# --- seeds ------------------------------------------------------------------------------------


def seeds() -> Iterator[tuple[str, bytes]]:
    """(file name, bytes) of every seed: each allowed format, small videos, and hostile files
    (names starting ``hostile-``: truncated, bomb, not an image, playlists)."""
    yield from _image_seeds()
    yield from _video_seeds()


def _image_seeds() -> Iterator[tuple[str, bytes]]:
    import numpy as np
    from PIL import ExifTags, Image

    from fixtures import hostile
    from fixtures.make_videos import fixture_photo

    photo = fixture_photo("chelsea.jpg").resize((48, 32), Image.Resampling.LANCZOS)
    rgba = photo.convert("RGBA")
    rgba.putalpha(Image.linear_gradient("L").resize(photo.size))
    grey = photo.convert("L")
    grey16 = Image.fromarray(np.asarray(grey, dtype=np.uint16) * 257)  # mode I;16
    palette = photo.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    exif_bytes = exif.tobytes()
    enc = hostile.encode

    jpeg = enc(photo, "JPEG", quality=75)
    yield "baseline.jpg", jpeg
    yield "progressive.jpg", enc(photo, "JPEG", quality=75, progressive=True, optimize=True)
    yield "444-exif6.jpg", enc(photo, "JPEG", quality=90, subsampling=0, exif=exif_bytes)
    yield "grey.jpg", enc(grey, "JPEG")
    yield "cmyk.jpg", enc(photo.convert("CMYK"), "JPEG")
    yield "mpo.jpg", enc(photo, "MPO", save_all=True, append_images=[grey.convert("RGB")])
    yield "hostile-truncated.jpg", hostile.truncated_jpeg(jpeg)

    yield "rgb.png", enc(photo, "PNG")
    yield "rgba-exif6.png", enc(rgba, "PNG", exif=exif_bytes)
    yield "grey.png", enc(grey, "PNG")
    yield "la.png", enc(rgba.convert("LA"), "PNG")
    yield "bilevel.png", enc(grey.convert("1"), "PNG")
    yield "grey16.png", enc(grey16, "PNG")
    yield "palette-trns.png", enc(palette, "PNG", transparency=0)
    yield "apng.png", enc(photo, "PNG", save_all=True, append_images=[grey.convert("RGB")])
    yield "hostile-bomb.png", hostile.decompression_bomb_png(8_000, 8_000)

    yield "lossy.webp", enc(photo, "WEBP", quality=60)
    yield "lossless-alpha.webp", enc(rgba, "WEBP", lossless=True)
    yield "exif6.webp", enc(photo, "WEBP", exif=exif_bytes)
    yield "animated.webp", enc(photo, "WEBP", save_all=True, append_images=[grey.convert("RGB")])

    yield "palette.gif", enc(palette, "GIF", transparency=0)
    yield "animated.gif", hostile.animated_gif((16, 12))
    yield "interlaced.gif", enc(grey, "GIF", interlace=True)

    yield "rgb.bmp", enc(photo, "BMP")
    yield "palette.bmp", enc(palette, "BMP")
    yield "bilevel.bmp", enc(grey.convert("1"), "BMP")
    yield "rgba.bmp", enc(rgba, "BMP")

    yield "raw.tif", enc(photo, "TIFF")
    yield "lzw-exif6.tif", enc(photo, "TIFF", compression="tiff_lzw", exif=exif_bytes)
    yield "deflate-rgba.tif", enc(rgba, "TIFF", compression="tiff_adobe_deflate")
    yield "packbits-grey.tif", enc(grey, "TIFF", compression="packbits")
    yield "jpeg.tif", enc(photo, "TIFF", compression="jpeg")
    yield "grey16.tif", enc(grey16, "TIFF")
    yield "cmyk.tif", enc(photo.convert("CMYK"), "TIFF")
    yield "multipage.tif", enc(photo, "TIFF", save_all=True, append_images=[grey])

    yield "hostile-text.txt", hostile.text_as_image()
    yield "hostile-image.svg", hostile.svg_bytes()


def _video_seeds() -> Iterator[tuple[str, bytes]]:
    from fixtures import make_videos

    with tempfile.TemporaryDirectory(prefix="hashsvc-b5-videos-") as tmp:
        for suffix in make_videos.FOURCC_BY_SUFFIX:
            path = make_videos.make_clip(
                Path(tmp) / f"clip{suffix}",
                [make_videos.PHOTO_A, make_videos.PHOTO_C],
                seconds_each=0.2,
                size=(32, 24),
                fps=10.0,
            )
            yield f"clip{suffix}", path.read_bytes()
    yield "hostile-ftyp-junk.mp4", make_videos.ftyp_junk(512)
    yield "hostile-hls.m3u8", make_videos.hls_playlist()
    yield "hostile-ffconcat.txt", make_videos.ffconcat_script()


def write_seeds(directory: Path) -> int:
    count = 0
    for name, data in seeds():
        (directory / name).write_bytes(data)
        count += 1
    return count


# --- the parent process ---------------------------------------------------------------------


def fuzzer_args(argv: Sequence[str], seed_dir: Path) -> list[str]:
    """libFuzzer's argv: our defaults unless overridden, then the corpus directories."""
    flags = [arg for arg in argv if arg.startswith("-")]
    dirs = [arg for arg in argv if not arg.startswith("-")]
    given = {flag.split("=", 1)[0] for flag in flags}
    defaults = [f"{name}={value}" for name, value in DEFAULT_FLAGS.items() if name not in given]
    if any(Path(arg).is_file() for arg in dirs):  # replaying given inputs (e.g. a crash-*)
        return [*defaults, *flags, *dirs]
    return [*defaults, *flags, *dirs, str(seed_dir)]


class _Summary:
    """What the child reported: its last status line, final stats and artifacts."""

    def __init__(self) -> None:
        self.status: dict[str, str] = {}
        self.stats: dict[str, int] = {}
        self.artifacts: list[str] = []

    def feed(self, line: str) -> None:
        if status := _STATUS_LINE.match(line):
            self.status = status.groupdict()
        elif stat := _STAT_LINE.match(line):
            self.stats[stat["name"]] = int(stat["value"])
        elif artifact := _ARTIFACT_LINE.search(line):
            self.artifacts.append(artifact["path"])

    def line(self, returncode: int, seed_count: int) -> str:
        execs = self.stats.get("number_of_executed_units", int(self.status.get("execs", 0)))
        rate = self.stats.get("average_exec_per_sec", int(self.status.get("rate", 0)))
        return (
            f"{SUMMARY_PREFIX} exit={returncode} execs={execs} exec/s={rate}"
            f" cov={self.status.get('cov', '?')} ft={self.status.get('ft', '?')}"
            f" corpus={self.status.get('corp', '?')} seeds={seed_count}"
            f" new_units={self.stats.get('new_units_added', '?')}"
            f" slowest_s={self.stats.get('slowest_unit_time_sec', '?')}"
            f" peak_rss_mb={self.stats.get('peak_rss_mb', '?')}"
            f" artifacts={','.join(self.artifacts) or 'none'}"
        )


def main(argv: Sequence[str]) -> int:
    with tempfile.TemporaryDirectory(prefix="hashsvc-b5-corpus-") as tmp:
        seed_dir = Path(tmp)
        seed_count = write_seeds(seed_dir)
        args = fuzzer_args(argv, seed_dir)
        command = [sys.executable, "-m", "tests.security.fuzz_decode", CHILD_FLAG, *args]
        print(f"B5: {seed_count} seeds in {seed_dir}; running {' '.join(args)}", flush=True)
        summary = _Summary()
        with subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
        ) as child:
            assert child.stdout is not None
            try:
                for line in child.stdout:
                    sys.stdout.write(line)
                    summary.feed(line)
            except KeyboardInterrupt:  # the child got the SIGINT too and reports its stats
                for line in child.stdout:
                    sys.stdout.write(line)
                    summary.feed(line)
            returncode = child.wait()
        print(summary.line(returncode, seed_count), flush=True)
        return returncode


if __name__ == "__main__":
    if sys.argv[1:2] == [CHILD_FLAG]:
        run_child(sys.argv[2:])
    else:
        sys.exit(main(sys.argv[1:]))
