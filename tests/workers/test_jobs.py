"""Queued scans through real worker processes: exactly-once results and flags, crash recovery,
poison jobs, dead letters, and replicas that follow withdrawals in every process."""

from __future__ import annotations

import http.server
import json
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
import redis

from fixtures.hostile import truncated_jpeg
from fixtures.make_variants import encode, load_photo
from fixtures.make_videos import cut_clip, make_clip, standard_clip
from hashsvc.config import Settings
from hashsvc.hashing import hash_media
from hashsvc.store import keys
from hashsvc.webhooks import SIGNATURE_HEADER, verify_signature
from tests.helpers import (
    PHOTOS,
    all_flags,
    bearer,
    make_platform,
    make_platform_with_root,
    make_platform_with_webhook,
    reupload,
    upload,
    victim_hashes,
)
from tests.live import start_service
from tests.workers.conftest import Workers, job_status, wait_finished, wait_for

VICTIM_PHOTOS = ("rocket", "hubble_deep_field")


def submit(client: httpx.Client, settings: Settings, name: str) -> tuple[str, str]:
    body = client.post("/v1/cases", json={"hashes": victim_hashes(PHOTOS[name], settings)}).json()
    return body["case_id"], body["secret"]


def enqueue(client: httpx.Client, api_key: str, data: bytes) -> str:
    response = client.post("/v1/scan/jobs", files=upload(data), headers=bearer(api_key))
    assert response.status_code == 202, response.text
    job_id: str = response.json()["job_id"]
    return job_id


def stream_is_drained(redis_url: str) -> bool:
    with redis.Redis.from_url(redis_url) as r:
        pending = r.xpending(keys.JOBS, keys.JOBS_GROUP)["pending"]
        return bool(r.xlen(keys.JOBS) == 0 and pending == 0)


def ten_videos(tmp_path: Path, victim: Path) -> dict[tuple[str, str], bytes]:
    """Five clips cut from the victim's video at other sizes, five videos of other photos."""
    videos = {}
    for number in range(5):
        start = 0.5 * number
        clip = cut_clip(victim, tmp_path / f"clip{number}.avi", start, start + 3.0, (400, 300))
        videos[("victim_video", f"clip{number}")] = clip.read_bytes()
        other = make_clip(tmp_path / f"other{number}.mp4", ["retina.jpg", "camera.png"], 1.5)
        videos[("other_video", f"other{number}")] = other.read_bytes()
    return videos


def test_many_jobs_two_workers_exactly_once(
    client: httpx.Client,
    settings: Settings,
    api_key: str,
    workers: Workers,
    redis_url: str,
    tmp_path: Path,
) -> None:
    for name in VICTIM_PHOTOS:
        submit(client, settings, name)
    victim_video = standard_clip(tmp_path / "victim.mp4")
    frames = hash_media(victim_video, settings).frames
    items = [{"signal": h.signal, "hash": h.hex, "quality": h.quality} for f in frames for h in f]
    client.post("/v1/cases", json={"videos": [{"frames": items}]}).raise_for_status()
    variants = ("reencode_q60", "resize_half", "slight_brightness", "webp_q75")
    uploads = {
        (name, variant): reupload(name, variant)
        for name in PHOTOS
        if name not in ("astronaut", "coffee", "chelsea")  # frames of the victim's video
        for variant in variants
    }
    plan = [list(uploads)[i % len(uploads)] for i in range(200)]
    videos = ten_videos(tmp_path, victim_video)
    uploads.update(videos)
    plan += list(videos)
    workers.start()
    workers.start()

    job_ids = [enqueue(client, api_key, uploads[key]) for key in plan]
    final = wait_finished(client, api_key, job_ids, timeout=240)

    matching = {"victim_video", *VICTIM_PHOTOS}
    for job_id, (name, _) in zip(job_ids, plan, strict=True):
        status = final[job_id]
        assert status["status"] == "done", status
        assert status["kind"] == ("video" if name.endswith("_video") else "image")
        assert status["matched"] is (name in matching), (name, status)
    flags = all_flags(client, api_key)
    expected = {j for j, (n, _) in zip(job_ids, plan, strict=True) if n in matching}
    assert len(flags) == len(expected)
    assert Counter(f["job_id"] for f in flags).most_common(1)[0][1] == 1
    assert {f["job_id"] for f in flags} == expected
    assert stream_is_drained(redis_url)
    with redis.Redis.from_url(redis_url) as r:
        assert not list(r.scan_iter(match=keys.job_blob("*")))


def big_photo(name: str) -> bytes:
    """A large upload, so that hashing takes long enough to kill a worker in the middle."""
    image = load_photo(PHOTOS[name]).convert("RGB").resize((4000, 3000))
    return encode(image, "PNG")


WORKER_MEMORY_LIMIT = 900 * 1024 * 1024


def huge_photo() -> bytes:
    """A 6000x4500 photo: decoding and hashing it needs far more than the limit above."""
    image = load_photo(PHOTOS["rocket"]).convert("RGB").resize((6000, 4500))
    return encode(image, "JPEG", quality=85)


def test_sigkill_mid_job_another_worker_completes_it(
    client: httpx.Client, settings: Settings, api_key: str, workers: Workers, redis_url: str
) -> None:
    submit(client, settings, "coffee")
    first = workers.start()
    job_id = enqueue(client, api_key, big_photo("coffee"))
    wait_for(lambda: job_status(client, api_key, job_id)["status"] == "running", timeout=30)
    with redis.Redis.from_url(redis_url) as r:
        assert r.xpending(keys.JOBS, keys.JOBS_GROUP)["pending"] == 1

    first.kill()
    first.wait()
    workers.start()
    final = wait_finished(client, api_key, [job_id])[job_id]

    assert final["status"] == "done", final
    assert final["attempts"] >= 2
    assert final["matched"] is True
    flags = client.get("/v1/flags", headers=bearer(api_key)).json()["flags"]
    assert [f["job_id"] for f in flags] == [job_id]
    assert stream_is_drained(redis_url)


def test_poison_jobs_fail_cleanly_and_workers_keep_serving(
    client: httpx.Client,
    settings: Settings,
    redis_url: str,
    workers: Workers,
    tmp_path: Path,
) -> None:
    (tmp_path / "a_directory").mkdir()
    api_key = make_platform_with_root(settings, redis_url, "Storage", tmp_path)
    submit(client, settings, "rocket")
    workers.start()

    corrupt = enqueue(client, api_key, truncated_jpeg(reupload("coffee")))
    unreadable = client.post(
        "/v1/scan/jobs",
        json={"uri": (tmp_path / "a_directory").as_uri()},
        headers=bearer(api_key),
    )
    assert unreadable.status_code == 422  # a directory is refused at enqueue already
    good_file = tmp_path / "rocket.jpg"
    good_file.write_bytes(reupload("rocket"))
    by_uri = client.post("/v1/scan/jobs", json={"uri": good_file.as_uri()}, headers=bearer(api_key))
    assert by_uri.status_code == 202, by_uri.text
    vanishing = tmp_path / "vanishing.jpg"
    vanishing.write_bytes(reupload("rocket"))
    gone = client.post("/v1/scan/jobs", json={"uri": vanishing.as_uri()}, headers=bearer(api_key))
    vanishing.unlink()  # deleted before a worker reads it

    final = wait_finished(
        client, api_key, [corrupt, by_uri.json()["job_id"], gone.json()["job_id"]], timeout=60
    )

    assert final[corrupt]["status"] == "failed"
    assert final[corrupt]["attempts"] == 1  # a clean rejection is not retried
    assert final[corrupt]["error"].startswith("corrupt")
    assert final[by_uri.json()["job_id"]]["status"] == "done"
    assert final[by_uri.json()["job_id"]]["matched"] is True
    missing = final[gone.json()["job_id"]]
    assert missing["status"] == "failed"
    assert "regular file" in missing["error"]
    with redis.Redis.from_url(redis_url, decode_responses=True) as r:
        dead = {e[1]["job_id"]: e[1] for e in r.xrange(keys.DEAD_JOBS)}
    assert set(dead) == {corrupt, gone.json()["job_id"]}
    assert stream_is_drained(redis_url)


def test_job_that_keeps_failing_is_dead_lettered_after_the_retry_limit(
    client: httpx.Client, settings: Settings, api_key: str, workers: Workers, redis_url: str
) -> None:
    """A job too big for the worker's memory fails (or kills the worker) on every delivery."""
    workers.start(memory_limit=WORKER_MEMORY_LIMIT)
    poison = enqueue(client, api_key, huge_photo())
    fine = enqueue(client, api_key, reupload("coffee"))

    final = wait_finished(client, api_key, [poison, fine], timeout=90)

    assert final[fine]["status"] == "done"
    assert final[poison]["status"] == "failed"
    assert final[poison]["error"].startswith("gave up after 3 attempts")
    with redis.Redis.from_url(redis_url, decode_responses=True) as r:
        [(_, dead)] = r.xrange(keys.DEAD_JOBS)
    # Failed by its 3rd attempt; a 4th delivery only if the worker itself died in the 3rd.
    assert dead["job_id"] == poison
    assert dead["deliveries"] in ("3", "4")
    assert stream_is_drained(redis_url)


def test_withdrawal_stops_matching_in_every_process_within_a_second(
    client: httpx.Client, settings: Settings, api_key: str, workers: Workers, redis_url: str
) -> None:
    workers.start()
    other = start_service(settings, redis_url)
    try:
        with httpx.Client(base_url=other.url, timeout=30) as second:
            case_id, secret = submit(client, settings, "chelsea")
            image = reupload("chelsea")
            warm = wait_finished(client, api_key, [enqueue(client, api_key, image)])
            assert next(iter(warm.values()))["matched"] is True
            assert second.post("/v1/scan", files=upload(image), headers=bearer(api_key)).json()[
                "matched"
            ]

            assert client.delete(f"/v1/cases/{case_id}", headers=bearer(secret)).status_code == 204

            after = second.post("/v1/scan", files=upload(image), headers=bearer(api_key)).json()
            assert after["matched"] is False
            job = enqueue(client, api_key, image)
            assert wait_finished(client, api_key, [job], timeout=10)[job]["matched"] is False
    finally:
        other.stop()


def test_job_api_errors(
    client: httpx.Client, settings: Settings, api_key: str, redis_url: str, tmp_path: Path
) -> None:
    job_id = enqueue(client, api_key, reupload("coffee"))
    assert job_status(client, api_key, job_id)["status"] == "queued"
    other_key = make_platform(settings, redis_url, "Other")
    hidden = client.get(f"/v1/scan/jobs/{job_id}", headers=bearer(other_key))
    assert hidden.status_code == 404
    unknown = client.get("/v1/scan/jobs/j_nothing", headers=bearer(api_key))
    assert unknown.content == hidden.content.replace(job_id.encode(), b"j_nothing")
    no_root = client.post(
        "/v1/scan/jobs", json={"uri": "file:///etc/passwd"}, headers=bearer(api_key)
    )
    assert no_root.status_code == 422
    assert no_root.json()["error"]["code"] == "uri_not_allowed"
    rooted = make_platform_with_root(settings, redis_url, "Rooted", tmp_path)
    (tmp_path / "link").symlink_to("/etc/passwd")
    for uri in ("file:///etc/passwd", (tmp_path / "link").as_uri(), "http://example.org/a.jpg"):
        response = client.post("/v1/scan/jobs", json={"uri": uri}, headers=bearer(rooted))
        assert response.status_code == 422, uri
        assert response.json()["error"]["code"] == "uri_not_allowed", uri
    empty = client.post(
        "/v1/scan/jobs", content=b"", headers={**bearer(api_key), "content-type": "video/mp4"}
    )
    assert empty.status_code == 400


def test_backlog_cap_answers_503_with_retry_after(
    settings: Settings, redis_url: str, api_key: str
) -> None:
    small = settings.model_copy(update={"max_job_backlog": 3})
    service = start_service(small, redis_url)
    try:
        with httpx.Client(base_url=service.url, timeout=30) as client:
            image = reupload("coffee")
            for _ in range(3):
                enqueue(client, api_key, image)
            refused = client.post("/v1/scan/jobs", files=upload(image), headers=bearer(api_key))
    finally:
        service.stop()
    assert refused.status_code == 503
    assert refused.headers["Retry-After"] == "5"
    assert refused.json()["error"]["code"] == "overloaded"


class _Receiver(http.server.BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[bytes, str]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((body, self.headers[SIGNATURE_HEADER]))
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[tuple[bytes, str]]]]:
    server = http.server.HTTPServer(("127.0.0.1", 0), _Receiver)
    _Receiver.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", _Receiver.received
    server.shutdown()
    server.server_close()


def test_webhook_is_signed(
    client: httpx.Client,
    settings: Settings,
    redis_url: str,
    workers: Workers,
    receiver: tuple[str, list[tuple[bytes, str]]],
) -> None:
    url, received = receiver
    api_key, secret = make_platform_with_webhook(settings, redis_url, "Hooked", url)
    submit(client, settings, "coffee")
    workers.start()
    job_id = enqueue(client, api_key, reupload("coffee"))
    wait_finished(client, api_key, [job_id])
    wait_for(lambda: len(received) == 1, timeout=10)

    body, signature = received[0]
    assert verify_signature(secret, body, signature)
    assert not verify_signature(secret, body + b" ", signature)
    payload = json.loads(body)
    assert (payload["job_id"], payload["status"], payload["kind"]) == (job_id, "done", "image")
    assert len(payload["matches"]) >= 1
