"""B4: hostile videos and file:// URIs through the queue with a real worker process, and the
decode path traced with ``strace -f -e trace=openat``: no file other than what the decoder
itself needs is opened, and never the canary a playlist points at."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from fixtures import make_videos as mv
from hashsvc.config import Settings
from hashsvc.media import is_video
from tests.helpers import bearer, make_platform_with_root, upload
from tests.workers.conftest import Workers, wait_finished

pytestmark = pytest.mark.timeout(240)

JOB_TIMEOUT_S = 30.0
FRAME_CAP = Settings().max_video_frames


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    directory = tmp_path_factory.mktemp("b4-clips")
    return {
        suffix: mv.standard_clip(directory / f"clip.{suffix}").read_bytes()
        for suffix in ("mp4", "avi")
    }


@pytest.fixture
def canary(tmp_path: Path) -> Path:
    path = tmp_path / "canary.txt"
    path.write_text("canary: nothing may read this\n")
    return path


def hostile_videos(clips: dict[str, bytes], canary: Path) -> dict[str, tuple[bytes, str]]:
    """name -> (bytes, expected failure reason); ``mvhd_24h`` is the one that may succeed."""
    return {
        "truncated_50": (mv.truncated(clips["mp4"]), "corrupt"),
        "mp4_without_moov": (mv.without_moov(clips["mp4"]), "corrupt"),
        "header_8k": (mv.avi_claiming(clips["avi"]), "too_many_pixels"),
        "mvhd_24h": (mv.mvhd_claiming(clips["mp4"]), ""),
        "extm3u_named_mp4": (
            mv.hls_playlist().replace(b"/etc/passwd", bytes(canary)),
            "unsupported_format",
        ),
        "avi_playlist": (mv.avi_with_playlist(canary), "corrupt"),
        "concat_string": (f"concat:{canary}|{canary}".encode(), "unsupported_format"),
        "subfile_string": (f"subfile,,start,0,end,0,,:{canary}".encode(), "unsupported_format"),
    }


@pytest.fixture
def roots(tmp_path: Path, clips: dict[str, bytes], canary: Path) -> dict[str, Path]:
    """Platform A's file root (a clip, an empty file, a symlink escaping to the canary) and
    platform B's (a clip)."""
    root_a, root_b = tmp_path / "root-a", tmp_path / "root-b"
    for root in (root_a, root_b):
        (root / "sub").mkdir(parents=True)
        (root / "clip.mp4").write_bytes(clips["mp4"])
    (root_a / "empty.mp4").write_bytes(b"")
    (root_a / "escape.mp4").symlink_to(canary)
    return {"a": root_a, "b": root_b}


def test_hostile_videos_fail_with_a_reason(
    client: httpx.Client,
    api_key: str,
    workers: Workers,
    clips: dict[str, bytes],
    canary: Path,
) -> None:
    worker = workers.start()
    auth = bearer(api_key)
    empty = client.post("/v1/scan/jobs", files=upload(b"", "empty.mp4"), headers=auth)
    assert empty.status_code == 400, empty.text
    assert empty.json()["error"]["code"] == "bad_request"
    jobs = {}
    for name, (data, _) in hostile_videos(clips, canary).items():
        headers = {**auth, "content-type": "video/mp4"}
        response = client.post("/v1/scan/jobs", content=data, headers=headers)
        assert response.status_code == 202, (name, response.text)
        jobs[name] = response.json()["job_id"]
    final = wait_finished(client, api_key, list(jobs.values()), timeout=JOB_TIMEOUT_S)
    outcomes = {}
    for name, (_, reason) in hostile_videos(clips, canary).items():
        status = final[jobs[name]]
        outcomes[name] = f"{status['status']}: {status['error'] or status['frames']}"
        assert status["finished_at"] - status["created_at"] < JOB_TIMEOUT_S, name
        if name == "mvhd_24h":  # the claim is ignored: the real 6 s of frames are sampled
            assert status["status"] == "done", status
            assert status["frames"] <= FRAME_CAP
            continue
        assert status["status"] == "failed", (name, status)
        assert status["error"].startswith(f"{reason}: "), (name, status["error"])
        assert status["attempts"] == 1
    print("\nB4 jobs:" + "".join(f"\n  {k}: {v}" for k, v in outcomes.items()))
    assert worker.poll() is None


def test_file_uris_are_confined(
    client: httpx.Client,
    api_key: str,
    settings: Settings,
    redis_url: str,
    workers: Workers,
    roots: dict[str, Path],
    canary: Path,
) -> None:
    key_a = make_platform_with_root(settings, redis_url, "A", roots["a"])
    make_platform_with_root(settings, redis_url, "B", roots["b"])
    root = roots["a"]
    bad = {
        "etc_passwd": "file:///etc/passwd",
        "root_dotdot": f"file://{root}/../..",
        "root_sub_dotdot": f"file://{root}/sub/../../{canary.name}",
        "symlink_escape": f"file://{root}/escape.mp4",
        "percent_dotdot": f"file://{root}/%2e%2e/{canary.name}",
        "percent_dotdot_upper": f"file://{root}/%2E%2E/%2E%2E/etc/passwd",
        "other_platform_root": f"file://{roots['b']}/clip.mp4",
        "other_host": f"file://example.org{root}/clip.mp4",
        "concat_scheme": f"concat:{root}/clip.mp4|{canary}",
        "subfile_scheme": f"subfile,,start,0,end,0,,:{root}/clip.mp4",
        "directory": f"file://{root}/sub",
    }
    statuses = {}
    for name, uri in bad.items():
        response = client.post("/v1/scan/jobs", json={"uri": uri}, headers=bearer(key_a))
        statuses[name] = response.status_code
        assert response.status_code == 422, (name, response.text)
        assert response.json()["error"]["code"] == "uri_not_allowed", name
    print(f"\nB4 bad file:// URIs -> {sorted(set(statuses.values()))}: {statuses}")
    # A platform without a file root may name no file at all, even one a rooted platform may.
    uri = f"file://{root}/clip.mp4"
    no_root = client.post("/v1/scan/jobs", json={"uri": uri}, headers=bearer(api_key))
    assert no_root.status_code == 422, no_root.text
    assert no_root.json()["error"]["code"] == "uri_not_allowed"

    workers.start()
    good = {"clip": f"file://{root}/clip.mp4", "empty": f"file://{root}/empty.mp4"}
    jobs = {}
    for name, uri in good.items():
        response = client.post("/v1/scan/jobs", json={"uri": uri}, headers=bearer(key_a))
        assert response.status_code == 202, (name, response.text)
        jobs[name] = response.json()["job_id"]
    final = wait_finished(client, key_a, list(jobs.values()), timeout=JOB_TIMEOUT_S)
    assert final[jobs["clip"]]["status"] == "done"
    assert final[jobs["empty"]]["status"] == "failed"
    assert final[jobs["empty"]]["error"].startswith("empty: ")


DRIVER = """
import json, os, pickle, sys
from hashsvc.config import Settings
from hashsvc.errors import MediaRejected
from hashsvc.hashing import hash_media

blobs, warm_up, marker = pickle.load(open(sys.argv[1], "rb")), sys.argv[2], sys.argv[3]
settings = Settings()
hash_media(open(warm_up, "rb").read(), settings)  # loads every library the decode needs
try:
    hash_media(b"not an image", settings)  # and Pillow's format plugins
except MediaRejected:
    pass
try:
    os.open(marker, os.O_RDONLY)  # a line in the trace: hostile decoding starts here
except FileNotFoundError:
    pass
outcomes = {}
for name, data in blobs.items():
    try:
        outcomes[name] = "frames=%d" % len(hash_media(data, settings).frames)
    except MediaRejected as exc:
        outcomes[name] = exc.reason
print(json.dumps(outcomes))
"""


def test_decode_opens_nothing_under_strace(
    clips: dict[str, bytes], canary: Path, tmp_path: Path
) -> None:
    blobs = {name: data for name, (data, _) in hostile_videos(clips, canary).items()}
    for name in ("extm3u_named_mp4", "concat_string", "subfile_string"):
        assert not is_video(blobs[name][:64]), name  # the sniffer stops them before FFmpeg
    (tmp_path / "blobs.pickle").write_bytes(pickle.dumps(blobs))
    (tmp_path / "warm.mp4").write_bytes(clips["mp4"])
    (tmp_path / "driver.py").write_text(DRIVER)
    marker, trace = tmp_path / "BEGIN-HOSTILE", tmp_path / "openat.trace"
    driver = [sys.executable, str(tmp_path / "driver.py"), str(tmp_path / "blobs.pickle")]
    driver += [str(tmp_path / "warm.mp4"), str(marker)]
    run = subprocess.run(
        ["/usr/bin/strace", "-f", "-e", "trace=openat", "-o", str(trace), *driver],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert run.returncode == 0, run.stderr[-2000:]
    outcomes = json.loads(run.stdout.splitlines()[-1])
    for name, (_, reason) in hostile_videos(clips, canary).items():
        assert outcomes[name] == (reason or outcomes[name]), (name, outcomes[name])
    lines = trace.read_text().splitlines()
    assert not [line for line in lines if str(canary) in line]
    start = next(i for i, line in enumerate(lines) if str(marker) in line)
    opened = [line.split('"')[1] for line in lines[start + 1 :] if "openat(" in line]
    unexpected = [path for path in opened if not is_library(path)]
    print(
        f"\nB4 strace: {len(lines)} trace lines; during hostile decoding {len(opened)} openat, "
        f"{len(opened) - len(unexpected)} of them libraries or Python modules"
    )
    assert unexpected == []


def is_library(path: str) -> bool:
    """Code the interpreter loads (a module or a shared library), nothing else."""
    roots = (sys.prefix, sys.base_prefix, "/usr/lib", "/lib")
    code = path.endswith((".py", ".pyc")) or ".so" in Path(path).name
    return code and path.startswith(roots)
