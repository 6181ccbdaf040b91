"""Videos end to end: the victim submits a video's frame hashes as one item; platform videos
are sampled by workers; clips, stills and other videos are matched both ways."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from fixtures.make_variants import IMAGES_DIR, encode, load_photo
from fixtures.make_videos import PHOTO_A, cut_clip, make_clip, standard_clip
from hashsvc.config import Settings
from hashsvc.hashing import hash_media
from tests.helpers import PHOTOS, bearer, upload, victim_hashes
from tests.workers.conftest import Workers, wait_finished


def frame_items(path: Path, settings: Settings) -> list[dict[str, Any]]:
    media = hash_media(path, settings)
    assert media.kind == "video"
    return [
        {"signal": h.signal, "hash": h.hex, "quality": h.quality}
        for frame in media.frames
        for h in frame
    ]


@pytest.fixture
def victim_video(tmp_path: Path) -> Path:
    return standard_clip(tmp_path / "victim.mp4")


def enqueue_file(client: httpx.Client, api_key: str, path: Path) -> str:
    response = client.post(
        "/v1/scan/jobs", files=upload(path.read_bytes(), path.name), headers=bearer(api_key)
    )
    assert response.status_code == 202, response.text
    job_id: str = response.json()["job_id"]
    return job_id


def test_videos_and_stills_match_both_ways(
    client: httpx.Client,
    settings: Settings,
    api_key: str,
    workers: Workers,
    victim_video: Path,
    tmp_path: Path,
) -> None:
    video_case = client.post(
        "/v1/cases", json={"videos": [{"frames": frame_items(victim_video, settings)}]}
    )
    assert video_case.status_code == 201, video_case.text
    still_case = client.post(
        "/v1/cases", json={"hashes": victim_hashes(PHOTOS["rocket"], settings)}
    )
    assert still_case.status_code == 201
    workers.start()
    workers.start()

    clip = cut_clip(victim_video, tmp_path / "clip.avi", 1.0, 5.0, (480, 360))
    with_still = make_clip(tmp_path / "with_still.mp4", ["rocket.jpg", "retina.jpg"], 2.0)
    unrelated = make_clip(tmp_path / "unrelated.webm", ["retina.jpg", "camera.png"], 2.0)
    frame_photo = encode(load_photo(IMAGES_DIR / PHOTO_A).convert("RGB").resize((400, 400)), "JPEG")
    jobs = {
        "clip": enqueue_file(client, api_key, clip),
        "with_still": enqueue_file(client, api_key, with_still),
        "unrelated": enqueue_file(client, api_key, unrelated),
    }
    image_job = client.post("/v1/scan/jobs", files=upload(frame_photo), headers=bearer(api_key))
    jobs["frame_photo"] = image_job.json()["job_id"]

    final = wait_finished(client, api_key, list(jobs.values()), timeout=120)
    status = {name: final[job_id] for name, job_id in jobs.items()}

    assert all(s["status"] == "done" for s in status.values()), status
    assert status["clip"]["kind"] == "video"
    assert status["clip"]["matched"] is True
    assert status["clip"]["matches"][0]["matched_frames"] >= settings.video_min_matching_frames
    assert status["with_still"]["matched"] is True
    assert status["unrelated"]["matched"] is False
    assert status["unrelated"]["frames"] >= 4
    assert status["frame_photo"]["kind"] == "image"
    assert status["frame_photo"]["matched"] is True
    secret = video_case.json()["secret"]
    case = client.get(f"/v1/cases/{video_case.json()['case_id']}", headers=bearer(secret)).json()
    assert case["videos"] == 1
    assert len(case["matches"]) == 2  # the clip and the still frame


@pytest.mark.parametrize(
    ("name", "make"),
    [
        ("empty", lambda clip: b""),
        ("truncated", lambda clip: clip[: len(clip) // 3]),
        ("playlist", lambda clip: b"#EXTM3U\n#EXTINF:1,\nfile:///etc/passwd\n"),
    ],
)
def test_bad_videos_fail_cleanly(
    client: httpx.Client,
    api_key: str,
    workers: Workers,
    victim_video: Path,
    name: str,
    make: Any,
) -> None:
    data: bytes = make(victim_video.read_bytes())
    response = client.post(
        "/v1/scan/jobs", content=data, headers={**bearer(api_key), "content-type": "video/mp4"}
    )
    if not data:
        assert response.status_code == 400
        return
    workers.start()
    job_id = response.json()["job_id"]
    final = wait_finished(client, api_key, [job_id], timeout=60)[job_id]
    assert final["status"] == "failed"
    assert final["attempts"] == 1
    assert final["error"].split(":")[0] in ("corrupt", "unsupported_format")


def test_sync_scan_points_videos_to_jobs(
    client: httpx.Client, api_key: str, victim_video: Path
) -> None:
    response = client.post(
        "/v1/scan", files=upload(victim_video.read_bytes(), "v.mp4"), headers=bearer(api_key)
    )
    assert response.status_code == 400
    assert "/v1/scan/jobs" in response.json()["error"]["message"]
