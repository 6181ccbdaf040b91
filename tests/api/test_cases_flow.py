"""End to end over real HTTP and a real Redis: a victim submits hashes, a platform's re-upload
is matched and shows on the case, withdrawal makes the hashes stop matching everywhere."""

from __future__ import annotations

import httpx
import pytest
import redis

from hashsvc.config import Settings
from hashsvc.hashing import hash_file
from tests.helpers import PHOTOS, bearer, reupload, upload, victim_hashes
from tests.live import start_service


def submit(client: httpx.Client, settings: Settings, name: str) -> tuple[str, str]:
    response = client.post("/v1/cases", json={"hashes": victim_hashes(PHOTOS[name], settings)})
    assert response.status_code == 201, response.text
    assert response.headers["Cache-Control"] == "no-store"  # it carries the secret
    body = response.json()
    assert body["hash_count"] == 2
    return body["case_id"], body["secret"]


@pytest.mark.parametrize("variant", ["reencode_q60", "resize_half", "small_crop_2pct"])
def test_reupload_is_matched_and_recorded_on_the_case(
    client: httpx.Client, settings: Settings, api_key: str, variant: str
) -> None:
    case_id, secret = submit(client, settings, "coffee")

    scan = client.post(
        "/v1/scan", files=upload(reupload("coffee", variant)), headers=bearer(api_key)
    )

    assert scan.status_code == 200, scan.text
    result = scan.json()
    assert result["matched"] is True
    signals = {m["signal"]: m["distance"] for m in result["matches"]}
    assert signals["pdq"] <= settings.pdq_threshold
    assert len({m["flag_id"] for m in result["matches"]}) == 1
    assert case_id not in scan.text
    assert secret not in scan.text
    status = client.get(f"/v1/cases/{case_id}", headers=bearer(secret)).json()
    assert status["hashes"] == {"pdq": 1, "phash": 1}
    assert [(m["platform"], m["signal"], m["decision"]) for m in status["matches"]] == [
        ("ExampleTube", "pdq", "pending")
    ]
    assert status["matches"][0]["distance"] == signals["pdq"]


def test_different_photo_does_not_match(
    client: httpx.Client, settings: Settings, api_key: str
) -> None:
    case_id, secret = submit(client, settings, "coffee")
    for other in sorted(set(PHOTOS) - {"coffee"}):
        scan = client.post("/v1/scan", files=upload(reupload(other)), headers=bearer(api_key))
        assert scan.status_code == 200, scan.text
        hashes = scan.json()["hashes"]
        # Looked up (a natural photo), and not matched: no not_matched reason.
        assert scan.json() == {
            "matched": False,
            "matches": [],
            "hashes": hashes,
            "not_matched": None,
        }
    status = client.get(f"/v1/cases/{case_id}", headers=bearer(secret)).json()
    assert status["matches"] == []


def test_cropped_reupload_matches_through_the_crop_hashes(
    client: httpx.Client, settings: Settings, api_key: str
) -> None:
    """A copy with 10 % cut off every side (the central 80 %) misses a case of the full
    picture's hashes and is matched through the crop hashes a victim's device also sends."""
    plain_id, plain_secret = submit(client, settings, "coffee")
    copy = upload(reupload("coffee", "crop_10pct"))
    assert client.post("/v1/scan", files=copy, headers=bearer(api_key)).json()["matched"] is False
    hashes = [
        {"signal": h.signal, "hash": h.hex, "quality": h.quality}
        for h in hash_file(PHOTOS["coffee"], settings, crops=True)
    ]
    response = client.post("/v1/cases", json={"hashes": hashes})
    assert response.status_code == 201, response.text
    assert response.json()["hash_count"] == len(hashes) > 2
    case_id, secret = response.json()["case_id"], response.json()["secret"]

    scan = client.post("/v1/scan", files=copy, headers=bearer(api_key)).json()

    assert scan["matched"] is True
    assert [m["signal"] for m in scan["matches"]] == ["pdq"]
    status = client.get(f"/v1/cases/{case_id}", headers=bearer(secret)).json()
    assert status["hashes"] == {"pdq": len(hashes) - 1, "phash": 1}
    assert [m["signal"] for m in status["matches"]] == ["pdq"]
    plain = client.get(f"/v1/cases/{plain_id}", headers=bearer(plain_secret)).json()
    assert plain["matches"] == []


def test_scan_by_precomputed_hashes(
    client: httpx.Client, settings: Settings, api_key: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    submit(client, settings, "rocket")
    path = tmp_path_factory.mktemp("up") / "rocket_small.jpg"
    path.write_bytes(reupload("rocket", "resize_half"))
    hashes = [{"signal": h["signal"], "hash": h["hash"]} for h in victim_hashes(path, settings)]

    scan = client.post("/v1/scan", json={"hashes": hashes}, headers=bearer(api_key))

    assert scan.status_code == 200, scan.text
    assert scan.json()["matched"] is True
    assert scan.json()["hashes"] == []


def test_withdraw_stops_matching_and_deletes_every_hash(
    client: httpx.Client, settings: Settings, api_key: str, redis_url: str
) -> None:
    case_id, secret = submit(client, settings, "chelsea")
    submit(client, settings, "rocket")  # another victim's case must survive
    image = reupload("chelsea")
    assert client.post("/v1/scan", files=upload(image), headers=bearer(api_key)).json()["matched"]

    assert client.delete(f"/v1/cases/{case_id}", headers=bearer(secret)).status_code == 204

    after = client.post("/v1/scan", files=upload(image), headers=bearer(api_key)).json()
    assert after["matched"] is False
    assert client.get(f"/v1/cases/{case_id}", headers=bearer(secret)).status_code == 404
    assert client.delete(f"/v1/cases/{case_id}", headers=bearer(secret)).status_code == 404
    with redis.Redis.from_url(redis_url, decode_responses=True) as r:
        assert not [k for k in r.scan_iter() if case_id in k]
        assert r.hlen("hashsvc:v1:bank:pdq") == 1
        assert r.hlen("hashsvc:v1:bank:phash") == 1
        assert case_id not in r.hvals("hashsvc:v1:bank:owner")
    rocket = client.post("/v1/scan", files=upload(reupload("rocket")), headers=bearer(api_key))
    assert rocket.json()["matched"] is True


def test_replicas_in_two_processes_follow_each_other(
    client: httpx.Client, settings: Settings, api_key: str, redis_url: str
) -> None:
    other = start_service(settings, redis_url)
    try:
        with httpx.Client(base_url=other.url, timeout=30) as second:
            second.get("/healthz")  # bootstrapped before the case exists
            case_id, secret = submit(client, settings, "astronaut")
            image = reupload("astronaut")
            scan = second.post("/v1/scan", files=upload(image), headers=bearer(api_key))
            assert scan.json()["matched"] is True
            assert second.delete(f"/v1/cases/{case_id}", headers=bearer(secret)).status_code == 204
            scan = client.post("/v1/scan", files=upload(image), headers=bearer(api_key))
            assert scan.json()["matched"] is False
    finally:
        other.stop()


def test_phash_alone_needs_pdq_corroboration(
    client: httpx.Client, settings: Settings, api_key: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    path = tmp_path_factory.mktemp("up") / "coffee.jpg"
    path.write_bytes(reupload("coffee"))
    upload_hashes = {h["signal"]: h["hash"] for h in victim_hashes(path, settings)}
    victim = {h["signal"]: h for h in victim_hashes(PHOTOS["coffee"], settings)}
    far_pdq = bytes(b ^ 0xFF for b in bytes.fromhex(upload_hashes["pdq"])).hex()

    client.post("/v1/cases", json={"hashes": [victim["pdq"], victim["phash"]]})
    uncorroborated = [
        {"signal": "phash", "hash": upload_hashes["phash"]},
        {"signal": "pdq", "hash": far_pdq},
    ]
    scan = client.post("/v1/scan", json={"hashes": uncorroborated}, headers=bearer(api_key))
    assert scan.json()["matched"] is False

    phash_only = [{"signal": "phash", "hash": upload_hashes["phash"]}]
    scan = client.post("/v1/scan", json={"hashes": phash_only}, headers=bearer(api_key))
    assert scan.json()["matched"] is True
    assert [m["signal"] for m in scan.json()["matches"]] == ["phash"]
