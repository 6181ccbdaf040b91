"""Platform-side matching: `hashsvc scan-local` (a real process) hashes files on the platform's
machine and matches them against the replica `hashsvc sync` keeps in the platform's Redis.
A victim's photo matches after its re-uploads' flips and borders, other photos do not, a
withdrawal stops the match once synced, imported lists match, bad files get a clear error."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from fixtures.make_videos import PHOTO_A, make_clip, unrelated_clip
from hashsvc.config import Settings
from tests.helpers import PHOTOS, bearer, reupload, victim_hashes
from tests.partner.conftest import Consumer, hashsvc


def scan_local(tmp_path: Path, replica_url: str, *files: Path) -> tuple[int, list[dict[str, Any]]]:
    done = hashsvc(tmp_path, "scan-local", *map(str, files), "--redis-url", replica_url)
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    return done.returncode, lines


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.fixture
def victim_case(client: httpx.Client, settings: Settings) -> tuple[str, str]:
    hashes = victim_hashes(PHOTOS["chelsea"], settings)
    response = client.post("/v1/cases", json={"hashes": hashes})
    assert response.status_code == 201, response.text
    return response.json()["case_id"], response.json()["secret"]


def test_scan_local_matches_against_the_synced_replica(
    tmp_path: Path,
    consumer: Consumer,
    client: httpx.Client,
    victim_case: tuple[str, str],
) -> None:
    consumer.once()
    flipped = write(tmp_path / "flipped.jpg", reupload("chelsea", "hflip"))
    bordered = write(tmp_path / "bordered.jpg", reupload("chelsea", "white_border_10pct"))
    other = write(tmp_path / "other.jpg", reupload("coffee"))
    corrupt = write(tmp_path / "corrupt.jpg", reupload("chelsea")[:400])

    status, lines = scan_local(tmp_path, consumer.replica_url, flipped, bordered, other, corrupt)

    by_file = {line["file"]: line for line in lines}
    assert set(by_file) == {"flipped.jpg", "bordered.jpg", "other.jpg", "corrupt.jpg"}
    pdq_ids = {i for i, (signal, _) in consumer.replica().items() if signal == "pdq"}
    for name in ("flipped.jpg", "bordered.jpg"):
        verdict = by_file[name]
        assert verdict["matched"] is True, verdict
        assert {m["id"] for m in verdict["matches"]} == pdq_ids  # the victim's one PDQ hash
        assert verdict["matches"][0]["distance"] <= 31
    assert by_file["flipped.jpg"]["matches"][0]["variant"].startswith("dihedral")
    assert by_file["bordered.jpg"]["matches"][0]["variant"] != "full"
    assert by_file["other.jpg"] == {**by_file["other.jpg"], "matched": False, "matches": []}
    assert by_file["corrupt.jpg"]["error"]["code"]  # a clear reason, and the others went on
    assert status == 2  # one file could not be scanned

    # Withdrawn at the server: matches no more once the withdrawal is synced.
    case_id, secret = victim_case
    assert client.delete(f"/v1/cases/{case_id}", headers=bearer(secret)).status_code in (200, 204)
    status, lines = scan_local(tmp_path, consumer.replica_url, flipped)
    assert status == 0
    assert lines[0]["matched"] is True, "not synced yet: still the old replica"
    consumer.once()
    status, lines = scan_local(tmp_path, consumer.replica_url, flipped)
    assert status == 0
    assert lines[0]["matched"] is False
    assert lines[0]["matches"] == []


def test_scan_local_uses_imported_lists_and_videos(
    tmp_path: Path, consumer: Consumer, settings: Settings
) -> None:
    consumer.once()  # an empty bank: nothing matches yet
    clip = make_clip(tmp_path / "clip.mp4", [PHOTO_A], seconds_each=3.0)
    unrelated = unrelated_clip(tmp_path / "unrelated.mp4")
    status, lines = scan_local(tmp_path, consumer.replica_url, clip)
    assert status == 0
    assert lines[0]["kind"] == "video"
    assert lines[0]["matched"] is False

    listed = tmp_path / "list.jsonl"
    rows = [h for h in victim_hashes(PHOTOS["astronaut"], settings) if h["signal"] == "pdq"]
    listed.write_text(
        "".join(json.dumps({"signal": "pdq", "hash": h["hash"]}) + "\n" for h in rows)
    )
    imported = hashsvc(tmp_path, "import", str(listed), "--redis-url", consumer.replica_url)
    assert imported.returncode == 0, imported.stderr

    status, lines = scan_local(tmp_path, consumer.replica_url, clip, unrelated)
    assert status == 0
    video, other = lines
    assert video["matched"] is True
    assert video["matched_frames"] >= settings.video_min_matching_frames
    assert all(m["id"].startswith("imported:") for m in video["matches"])
    assert other["matched"] is False
