"""B8: orientation, pixel modes and frames are handled the same way by the API (sync scan),
the worker (queued job, real worker process) and the CLI (``hashsvc hash``), bit for bit.

EXIF orientations 1-8 of one photo are stored so that applying the tag gives the upright
photo: losslessly (PNG ``eXIf``: hashes equal the upright ones) and as JPEG (re-encoded:
pHash within 2, PDQ within 8). Animated GIFs hash as their first frame.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import redis
from PIL import ExifTags, Image

from fixtures.hostile import encode
from fixtures.make_variants import IMAGES_DIR, load_photo
from hashsvc.config import Settings
from hashsvc.hashing import hash_bytes
from hashsvc.signals import SIGNALS
from hashsvc.store import keys
from tests.helpers import bearer, upload
from tests.workers.conftest import Workers, wait_finished

pytestmark = pytest.mark.timeout(240)

# Orientation -> how the stored pixels are made from the upright photo (the inverse of the
# transposition a viewer applies for that tag).
STORED_AS: dict[int, Image.Transpose | None] = {
    1: None,
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}
JPEG_MAX = {"phash": 2, "pdq": 8}


def upright() -> Image.Image:
    """A non-square photo (rocket.jpg at 320x213), upright."""
    return load_photo(IMAGES_DIR / "rocket.jpg").convert("RGB").resize((320, 213))


def oriented(image: Image.Image, orientation: int, fmt: str) -> bytes:
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    transpose = STORED_AS[orientation]
    stored = image if transpose is None else image.transpose(transpose)
    params: dict[str, Any] = {"quality": 95} if fmt == "JPEG" else {}
    return encode(stored, fmt, exif=exif.tobytes(), **params)


def pixel_modes(image: Image.Image) -> dict[str, bytes]:
    """CMYK JPEG, 16-bit greyscale PNG, palette+alpha PNG, LA PNG, animated GIF."""
    grey16 = (np.asarray(image.convert("L"), dtype=np.uint16) * 257).astype(np.uint16)
    palette = image.convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    second = Image.new("RGB", image.size, (0, 0, 255))
    return {
        "cmyk.jpg": encode(image.convert("CMYK"), "JPEG", quality=95),
        "grey16.png": encode(Image.fromarray(grey16), "PNG"),
        "palette-alpha.png": encode(palette, "PNG", transparency=0),
        "la.png": encode(image.convert("LA"), "PNG"),
        "animated.gif": encode(
            image.convert("P"), "GIF", save_all=True, append_images=[second], duration=100
        ),
    }


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    image = upright()
    data = {f"orient-{o}.png": oriented(image, o, "PNG") for o in STORED_AS}
    data |= {f"orient-{o}.jpg": oriented(image, o, "JPEG") for o in STORED_AS}
    data["upright.png"] = encode(image, "PNG")
    data |= pixel_modes(image)
    directory = tmp_path_factory.mktemp("b8")
    for name, content in data.items():
        (directory / name).write_bytes(content)
    return {name: directory / name for name in data}


Hashes = dict[str, tuple[str, int | None]]


def as_map(items: list[dict[str, Any]]) -> Hashes:
    return {item["signal"]: (item["hash"], item["quality"]) for item in items}


def api_hashes(client: httpx.Client, api_key: str, files: dict[str, Path]) -> dict[str, Hashes]:
    found = {}
    for name, path in files.items():
        response = client.post(
            "/v1/scan", files=upload(path.read_bytes(), name), headers=bearer(api_key)
        )
        assert response.status_code == 200, (name, response.text)
        found[name] = as_map(response.json()["hashes"])
    return found


def worker_hashes(
    client: httpx.Client, api_key: str, redis_url: str, files: dict[str, Path]
) -> dict[str, Hashes]:
    jobs = {}
    for name, path in files.items():
        response = client.post(
            "/v1/scan/jobs", files=upload(path.read_bytes(), name), headers=bearer(api_key)
        )
        assert response.status_code == 202, (name, response.text)
        jobs[name] = response.json()["job_id"]
    final = wait_finished(client, api_key, list(jobs.values()), timeout=90)
    found = {}
    with redis.Redis.from_url(redis_url, decode_responses=True) as r:
        for name, job_id in jobs.items():
            assert final[job_id]["status"] == "done", (name, final[job_id])
            result = json.loads(str(r.hget(keys.job(job_id), "result")))
            found[name] = as_map(result["hashes"])
    return found


def cli_hashes(files: dict[str, Path], tmp_path: Path) -> dict[str, Hashes]:
    out = subprocess.run(
        [sys.executable, "-m", "hashsvc", "hash", "--json", *map(str, files.values())],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        env={"PATH": "/usr/bin:/bin", "HASHSVC_DATA_DIR": str(tmp_path / "cli")},
    )
    by_path = {json.loads(line)["file"]: json.loads(line) for line in out.stdout.splitlines()}
    return {name: as_map(by_path[str(path)]["hashes"]) for name, path in files.items()}


def distance(signal: str, a: str, b: str) -> int:
    code_a, code_b = SIGNALS[signal].parse_hex(a), SIGNALS[signal].parse_hex(b)
    return sum(bin(x ^ y).count("1") for x, y in zip(code_a, code_b, strict=True))


def test_api_worker_and_cli_agree_and_orientations_match(
    client: httpx.Client,
    api_key: str,
    redis_url: str,
    workers: Workers,
    files: dict[str, Path],
    settings: Settings,
    tmp_path: Path,
) -> None:
    workers.start()
    by_api = api_hashes(client, api_key, files)
    by_worker = worker_hashes(client, api_key, redis_url, files)
    by_cli = cli_hashes(files, tmp_path)
    for name in files:
        assert by_api[name] == by_worker[name] == by_cli[name], name

    reference = by_api["upright.png"]
    worst = {"phash": 0, "pdq": 0}
    for orientation in STORED_AS:
        assert by_api[f"orient-{orientation}.png"] == reference, orientation  # lossless: equal
        for signal, (code, _) in by_api[f"orient-{orientation}.jpg"].items():
            d = distance(signal, code, reference[signal][0])
            worst[signal] = max(worst[signal], d)
            assert d <= JPEG_MAX[signal], (orientation, signal, d)
    print(f"\nB8: JPEG orientations, worst distance to upright: {worst}")

    first_frame = encode(upright().convert("P").convert("RGB"), "PNG")
    expected = {h.signal: (h.hex, h.quality) for h in hash_bytes(first_frame, settings)}
    assert by_api["animated.gif"] == expected
