"""Every bad input gets a 4xx with a JSON error naming the problem; never a 500."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from fixtures.hostile import (
    decompression_bomb_png,
    flat_image_png,
    random_bytes,
    text_as_image,
    truncated_jpeg,
)
from hashsvc.config import Settings
from hashsvc.security import new_api_key, new_case_secret
from tests.helpers import PHOTOS, bearer, reupload, upload, victim_hashes

PDQ_HEX = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"
PHASH_HEX = "c3d3e3b3c1c19c9c"


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error: dict[str, Any] = response.json()["error"]
    assert error["code"]
    assert error["message"]
    return error


@pytest.mark.parametrize(
    ("hashes", "status", "code", "mentions"),
    [
        ([{"signal": "md5", "hash": PHASH_HEX}], 422, "unknown_signal", "md5"),
        ([{"signal": "pdq", "hash": PDQ_HEX[:-2]}], 422, "invalid_hash", "64"),
        ([{"signal": "phash", "hash": "zz" + PHASH_HEX[2:]}], 422, "invalid_hash", "hex"),
        ([{"signal": "phash", "hash": ""}], 422, "invalid_hash", "phash"),
        ([], 400, "bad_request", "empty"),
        ([{"signal": "phash", "hash": "8000000000000000"}], 422, "low_information_hash", ""),
        ([{"signal": "pdq", "hash": PDQ_HEX, "quality": 20}], 422, "low_information_hash", ""),
        ([{"signal": "pdq", "hash": PDQ_HEX}], 422, "invalid_hash", "quality score"),
        ([{"signal": "pdq", "hash": PDQ_HEX, "quality": 101}], 422, "invalid_request", "100"),
        ([{"signal": "pdq"}], 422, "invalid_request", "hash"),
        ([{"signal": "pdq", "hash": PDQ_HEX, "extra": 1}], 422, "invalid_request", "extra"),
    ],
)
def test_case_submission_errors(
    client: httpx.Client, hashes: list[dict[str, Any]], status: int, code: str, mentions: str
) -> None:
    error = error_of(client.post("/v1/cases", json={"hashes": hashes}), status)
    assert error["code"] == code
    assert mentions in error["message"]


def test_flat_image_hashes_are_refused(
    client: httpx.Client, settings: Settings, tmp_path: Any
) -> None:
    path = tmp_path / "flat.png"
    path.write_bytes(flat_image_png((120, 120, 120)))
    response = client.post("/v1/cases", json={"hashes": victim_hashes(path, settings)})
    assert error_of(response, 422)["code"] == "low_information_hash"


def test_too_many_hashes(client: httpx.Client, settings: Settings) -> None:
    hashes = [
        {"signal": "phash", "hash": f"{i:016x}"} for i in range(settings.max_hashes_per_case + 1)
    ]
    error = error_of(client.post("/v1/cases", json={"hashes": hashes}), 422)
    assert error["code"] == "too_many_hashes"
    assert str(settings.max_hashes_per_case) in error["message"]


def test_malformed_and_oversized_json(client: httpx.Client, settings: Settings) -> None:
    headers = {"content-type": "application/json"}
    assert (
        error_of(client.post("/v1/cases", content=b"{not json", headers=headers), 400)["code"]
        == "malformed_json"
    )
    big = b'{"hashes": [' + b'{"signal": "phash", "hash": "c3d3e3b3c1c19c9c"},' * 10_000 + b"]}"
    assert len(big) > settings.max_request_json_bytes
    error = error_of(client.post("/v1/cases", content=big, headers=headers), 413)
    assert error["code"] == "request_too_large"


def test_oversized_chunked_body_is_cut_off(client: httpx.Client, api_key: str) -> None:
    def chunks() -> Any:
        for _ in range(100):
            yield b"\0" * (64 * 1024)

    response = client.post(
        "/v1/scan",
        content=chunks(),
        headers={**bearer(api_key), "content-type": "image/jpeg"},
    )
    assert error_of(response, 413)["code"] == "request_too_large"


def test_case_access_is_indistinguishable(client: httpx.Client, settings: Settings) -> None:
    hashes = victim_hashes(PHOTOS["coffee"], settings)
    case_id = client.post("/v1/cases", json={"hashes": hashes}).json()["case_id"]
    wrong = new_case_secret()  # well formed, opens nothing
    wrong_secret = client.get(f"/v1/cases/{case_id}", headers=bearer(wrong))
    unknown = client.get("/v1/cases/case_AAAAAAAAAAAAAAAAAAAAAA", headers=bearer(wrong))
    malformed = client.get("/v1/cases/..%2f..", headers=bearer(wrong))
    assert wrong_secret.status_code == unknown.status_code == 404
    assert wrong_secret.content == unknown.content
    assert malformed.status_code == 404
    assert error_of(client.get(f"/v1/cases/{case_id}"), 401)["code"] == "not_authorized"
    wrong_delete = client.delete(f"/v1/cases/{case_id}", headers=bearer(wrong))
    assert wrong_delete.content == unknown.content
    # Not a case secret at all (malformed, or an API key): 401 naming the expected kind.
    for token in ("x", new_api_key()):
        denied = client.get(f"/v1/cases/{case_id}", headers=bearer(token))
        assert error_of(denied, 401)["code"] == "not_authorized"
        assert denied.headers["www-authenticate"] == "Bearer"


def test_scan_requires_a_valid_api_key(client: httpx.Client, api_key: str) -> None:
    payload = {"hashes": [{"signal": "phash", "hash": PHASH_HEX}]}
    assert error_of(client.post("/v1/scan", json=payload), 401)["code"] == "not_authorized"
    wrong = client.post("/v1/scan", json=payload, headers=bearer(api_key + "x"))
    assert error_of(wrong, 401)["code"] == "not_authorized"
    in_query = client.post(f"/v1/scan?api_key={api_key}", json=payload)
    assert in_query.status_code == 401
    assert client.post("/v1/scan", json=payload, headers={"X-API-Key": api_key}).status_code == 200


@pytest.mark.parametrize(
    ("make_body", "status", "reason"),
    [
        (lambda: truncated_jpeg(reupload("coffee")), 422, "corrupt"),
        (decompression_bomb_png, 413, "too_many_pixels"),
        (text_as_image, 422, "unsupported_format"),
        (lambda: random_bytes(5000, seed=7), 422, "unsupported_format"),
        (lambda: b"", 422, "empty"),
    ],
)
def test_hostile_uploads(
    client: httpx.Client, api_key: str, make_body: Any, status: int, reason: str
) -> None:
    response = client.post("/v1/scan", files=upload(make_body()), headers=bearer(api_key))
    error = error_of(response, status)
    assert error["code"] == "media_rejected"
    assert error["reason"] == reason


def test_upload_over_the_byte_limit(client: httpx.Client, settings: Settings, api_key: str) -> None:
    too_big = b"\xff\xd8" + b"\0" * settings.max_upload_bytes
    response = client.post("/v1/scan", files=upload(too_big), headers=bearer(api_key))
    assert error_of(response, 413)["reason"] == "too_many_bytes"


@pytest.mark.parametrize(
    ("content", "content_type", "status", "code"),
    [
        (b"hello", "text/plain", 400, "bad_request"),
        (b"{", "application/json", 400, "bad_request"),
        (b'{"hashes": "nope"}', "application/json", 422, "invalid_request"),
        (b'{"hashes": [], "case_id": "x"}', "application/json", 422, "invalid_request"),
        (
            b"--x\r\nContent-Disposition: form-data; name=a\r\n\r\nb\r\n--x--\r\n",
            "multipart/form-data; boundary=x",
            422,
            "invalid_request",
        ),
        (b"garbage", "multipart/form-data", 400, "bad_request"),
    ],
)
def test_scan_body_errors(
    client: httpx.Client, api_key: str, content: bytes, content_type: str, status: int, code: str
) -> None:
    response = client.post(
        "/v1/scan", content=content, headers={**bearer(api_key), "content-type": content_type}
    )
    assert error_of(response, status)["code"] == code


def test_unknown_route_and_method(client: httpx.Client) -> None:
    assert error_of(client.get("/v1/nothing"), 404)["code"] == "not_found"
    assert error_of(client.put("/v1/cases"), 405)["code"] == "method_not_allowed"
