"""A corpus of real photographs for ``bench_quality.py``, rebuilt offline from Debian packages.

Nothing here is committed: ``python benchmarks/corpus.py`` runs ``apt-get download`` (the
machine's configured Debian mirror; run ``apt-get update`` once first), extracts the chosen
pictures with ``dpkg-deb`` and writes each one, converted to RGB and scaled down to at most
``MAX_SIDE`` pixels on its longest side, as a PNG into the cache directory
(``$HASHSVC_CORPUS_DIR``, default ``~/.cache/hashsvc/corpus``), with a ``manifest.json``
(source package and version, member, licence family, sha256). The 7 committed fixture
photographs (scikit-image's sample data) are added as they are.

Sources (see benchmarks/README.md for counts and licences): GCompris's activity pictures
(``gcompris-qt-data``: photos of animals, monuments, tools, fish, instruments, everyday objects,
stored as WebP inside Qt ``.rcc`` resource bundles), desktop wallpapers (``plasma-workspace-
wallpapers``, ``mate-backgrounds``, ``lomiri-wallpapers-16.04``/``-20.04``, ``ukui-wallpapers``)
and OpenCV's sample pictures (``opencv-doc``). No people-centred or intimate imagery; the one
classic test picture of a person cropped from a magazine (``lena``) is not in the selection.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import re
import struct
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

REPO = Path(__file__).resolve().parent.parent
FIXTURE_PHOTOS = REPO / "fixtures" / "images"
MAX_SIDE = 1024
MIN_SIDE = 200


def cache_dir() -> Path:
    """Where the corpus lives (outside the work tree: never committed)."""
    default = Path.home() / ".cache" / "hashsvc" / "corpus"
    return Path(os.environ.get("HASHSVC_CORPUS_DIR", default))


@dataclass(frozen=True)
class Source:
    """One Debian package and which of its files are photographs."""

    package: str
    members: str  # regex on the member path inside the package
    licence: str
    rcc: bool = False  # members are Qt resource bundles holding the pictures


# GCompris activities whose pictures are photographs (others are drawings or paintings).
_GCOMPRIS_PHOTO_ACTIVITIES = (
    "categorization",
    "erase",
    "explore_monuments",
    "explore_world_animals",
    "explore_farm_animals",
    "explore_world_music",
)
# OpenCV samples that are single photographs (no stereo pair halves, synthetic shapes,
# logos, paintings or the 'lena' picture).
_OPENCV_PHOTOS = (
    "aero1",
    "apple",
    "baboon",
    "basketball1",
    "board",
    "box_in_scene",
    "building",
    "butterfly",
    "fruits",
    "graf1",
    "HappyFish",
    "home",
    "leuvenA",
    "left01",
    "messi5",
    "orange",
    "rubberwhale1",
    "smarties",
    "squirrel_cls",
    "stuff",
    "aloeL",
    "ela_original",
)

SOURCES: tuple[Source, ...] = (
    Source(
        "gcompris-qt-data",
        r"rcc/(" + "|".join(_GCOMPRIS_PHOTO_ACTIVITIES) + r")\.rcc$",
        "CC-BY-SA 2.0-4.0, CC-BY 2.0-3.0, CC0, public domain, GPL-3+ (per file: "
        "/usr/share/doc/gcompris-qt-data/copyright)",
        rcc=True,
    ),
    Source(
        "plasma-workspace-wallpapers",
        r"wallpapers/[^/]+/contents/images/[^/]+\.(jpg|png)$",
        "GPL-2+/LGPL (KDE wallpapers; some are digital renders, not photographs)",
    ),
    Source(
        "mate-backgrounds", r"mate/(nature/[^/]+|abstract/Elephants)\.jpg$", "GPL-2+/CC-BY-SA-4.0"
    ),
    Source("lomiri-wallpapers-16.04", r"backgrounds/[^/]+\.jpg$", "CC-BY-4.0/CC-BY-SA-3.0/4.0/CC0"),
    Source("lomiri-wallpapers-20.04", r"backgrounds/[^/]+\.jpg$", "CC-BY-4.0/CC-BY-SA-4.0"),
    Source("ukui-wallpapers", r"backgrounds/[^/]+\.jpg$", "CC-BY-SA-3.0"),
    Source(
        "opencv-doc",
        r"examples/data/(" + "|".join(_OPENCV_PHOTOS) + r")\.(jpg|png)$",
        "BSD-3-Clause/Apache-2.0 (OpenCV samples)",
    ),
)


def _rcc_pictures(data: bytes) -> Iterator[bytes]:
    """Pictures stored uncompressed in a Qt ``.rcc`` bundle: each file's bytes follow its
    big-endian 32-bit length, so a JPEG/PNG/WebP signature with a plausible length before it
    delimits one file exactly."""
    for found in re.finditer(rb"\xff\xd8\xff|\x89PNG\r\n\x1a\n|RIFF....WEBP", data, re.S):
        start = found.start()
        if start < 4:
            continue
        (size,) = struct.unpack(">I", data[start - 4 : start])
        if 1000 <= size <= len(data) - start:
            yield data[start : start + size]


def _open(data: bytes) -> Image.Image | None:
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            return image.convert("RGB")
    except (OSError, ValueError, SyntaxError):
        return None


def _normalised(image: Image.Image) -> Image.Image:
    if max(image.size) > MAX_SIDE:
        image = image.copy()
        image.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    return image


def _package_version(deb: Path) -> str:
    out = subprocess.run(
        ["dpkg-deb", "-f", str(deb), "Version"], check=True, capture_output=True, text=True
    )
    return out.stdout.strip()


def _download(package: str, debs: Path) -> Path:
    found = sorted(debs.glob(f"{package}_*.deb"))
    if not found:
        subprocess.run(["apt-get", "download", package], cwd=debs, check=True)
        found = sorted(debs.glob(f"{package}_*.deb"))
    return found[-1]


def _extract(source: Source, deb: Path) -> Iterator[tuple[str, Image.Image]]:
    """(name, picture) for every selected photograph in one package."""
    pattern = re.compile(source.members)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["dpkg-deb", "-x", str(deb), tmp], check=True)
        root = Path(tmp)
        members = sorted(p for p in root.rglob("*") if p.is_file() and pattern.search(str(p)))
        if source.package == "plasma-workspace-wallpapers":
            # One wallpaper comes in many sizes: keep the largest file of each.
            largest: dict[Path, Path] = {}
            for path in members:
                key = path.parents[2]
                if key not in largest or path.stat().st_size > largest[key].stat().st_size:
                    largest[key] = path
            members = sorted(largest.values())
        for path in members:
            stem = path.parents[2].name if source.package.startswith("plasma") else path.stem
            if source.rcc:
                for number, blob in enumerate(_rcc_pictures(path.read_bytes())):
                    image = _open(blob)
                    if image is not None and min(image.size) >= MIN_SIDE:
                        yield f"{path.stem}-{number:03d}", image
            else:
                image = _open(path.read_bytes())
                if image is not None and min(image.size) >= MIN_SIDE:
                    yield stem, image


def build(target: Path) -> list[dict[str, str]]:
    """Download, extract and write the corpus into ``target``; returns the manifest."""
    photos = target / "photos"
    debs = target / "debs"
    photos.mkdir(parents=True, exist_ok=True)
    debs.mkdir(parents=True, exist_ok=True)
    manifest: list[dict[str, str]] = []

    def write(name: str, image: Image.Image, origin: str, licence: str) -> None:
        buffer = io.BytesIO()
        _normalised(image).save(buffer, format="PNG")
        data = buffer.getvalue()
        (photos / f"{name}.png").write_bytes(data)
        digest = hashlib.sha256(data).hexdigest()
        manifest.append({"name": name, "origin": origin, "licence": licence, "sha256": digest})

    for source in SOURCES:
        deb = _download(source.package, debs)
        version = _package_version(deb)
        count = 0
        for stem, image in _extract(source, deb):
            write(f"{source.package}__{stem}", image, f"{source.package} {version}", source.licence)
            count += 1
        print(f"{source.package} {version}: {count} pictures", file=sys.stderr)
    for path in sorted(FIXTURE_PHOTOS.iterdir()):
        picture = _open(path.read_bytes())
        if picture is not None:
            write(
                f"fixtures__{path.stem}", picture, "fixtures/images (scikit-image data)", "BSD/CC0"
            )
    (target / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest


def names(target: Path | None = None) -> list[str]:
    """The corpus's picture names, sorted; builds the corpus first if missing."""
    root = cache_dir() if target is None else target
    if not (root / "manifest.json").exists():
        build(root)
    entries = json.loads((root / "manifest.json").read_text())
    return sorted(str(entry["name"]) for entry in entries)


def load(
    target: Path | None = None, only: list[str] | None = None
) -> list[tuple[str, Image.Image]]:
    """The corpus as (name, RGB picture), sorted by name (``only`` those names, in that order);
    builds it first if missing."""
    root = cache_dir() if target is None else target
    out = []
    for name in names(root) if only is None else only:
        with Image.open(root / "photos" / f"{name}.png") as image:
            out.append((name, image.convert("RGB")))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dir", type=Path, default=None, help="cache directory")
    args = parser.parse_args()
    manifest = build(args.dir or cache_dir())
    print(f"{len(manifest)} photographs in {args.dir or cache_dir()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
