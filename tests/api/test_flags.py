"""Flags: every match raises one for the scanning platform; the platform reviews its own flags
and reports decisions; the victim's case shows them; withdrawal retires them."""

from __future__ import annotations

from typing import Any

import httpx

from hashsvc.config import Settings
from tests.helpers import (
    PHOTOS,
    all_flags,
    bearer,
    make_platform,
    reupload,
    upload,
    victim_hashes,
)


def submit(client: httpx.Client, settings: Settings, name: str) -> tuple[str, str]:
    body = client.post("/v1/cases", json={"hashes": victim_hashes(PHOTOS[name], settings)}).json()
    return body["case_id"], body["secret"]


def scan_flag(client: httpx.Client, api_key: str, name: str) -> str:
    result = client.post("/v1/scan", files=upload(reupload(name)), headers=bearer(api_key)).json()
    assert result["matched"] is True
    flag_ids: set[str] = {m["flag_id"] for m in result["matches"]}
    assert len(flag_ids) == 1
    return flag_ids.pop()


def flags_of(client: httpx.Client, api_key: str, **params: Any) -> list[dict[str, Any]]:
    response = client.get("/v1/flags", params=params, headers=bearer(api_key))
    assert response.status_code == 200, response.text
    flags: list[dict[str, Any]] = response.json()["flags"]
    return flags


def test_flag_review_and_decision_reach_the_victim(
    client: httpx.Client, settings: Settings, api_key: str, redis_url: str
) -> None:
    case_id, secret = submit(client, settings, "coffee")
    other_key = make_platform(settings, redis_url, "OtherSite")
    flag_id = scan_flag(client, api_key, "coffee")

    [flag] = flags_of(client, api_key)
    assert flag["flag_id"] == flag_id
    assert (flag["status"], flag["decision"], flag["signal"]) == ("open", "pending", "pdq")
    assert case_id not in str(flag)
    assert flags_of(client, other_key) == []
    assert flags_of(client, api_key, status="decided") == []

    denied = client.post(
        f"/v1/flags/{flag_id}/decision", json={"decision": "removed"}, headers=bearer(other_key)
    )
    assert denied.status_code == 404
    decided = client.post(
        f"/v1/flags/{flag_id}/decision", json={"decision": "removed"}, headers=bearer(api_key)
    )
    assert decided.status_code == 200, decided.text
    assert (decided.json()["status"], decided.json()["decision"]) == ("decided", "removed")

    [match] = client.get(f"/v1/cases/{case_id}", headers=bearer(secret)).json()["matches"]
    assert (match["platform"], match["status"], match["decision"]) == (
        "ExampleTube",
        "decided",
        "removed",
    )
    assert match["decided_at"] is not None
    assert [f["flag_id"] for f in flags_of(client, api_key, status="decided")] == [flag_id]


def test_withdrawal_retires_open_flags(
    client: httpx.Client, settings: Settings, api_key: str
) -> None:
    case_id, secret = submit(client, settings, "rocket")
    flag_id = scan_flag(client, api_key, "rocket")
    assert client.delete(f"/v1/cases/{case_id}", headers=bearer(secret)).status_code == 204

    [flag] = flags_of(client, api_key)
    assert flag["status"] == "withdrawn"
    response = client.post(
        f"/v1/flags/{flag_id}/decision", json={"decision": "removed"}, headers=bearer(api_key)
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "flag_withdrawn"


def test_flag_pages_and_errors(client: httpx.Client, settings: Settings, api_key: str) -> None:
    submit(client, settings, "chelsea")
    raised = [scan_flag(client, api_key, "chelsea") for _ in range(3)]
    first = client.get("/v1/flags", params={"limit": 2}, headers=bearer(api_key)).json()
    assert len(first["flags"]) == 2
    second = client.get(
        "/v1/flags", params={"limit": 2, "cursor": first["next_cursor"]}, headers=bearer(api_key)
    ).json()
    seen = [f["flag_id"] for f in first["flags"] + second["flags"]]
    assert sorted(seen) == sorted(raised)
    assert second["next_cursor"] is None
    assert all_flags(client, api_key) == first["flags"] + second["flags"]
    over = client.get("/v1/flags", params={"limit": 101}, headers=bearer(api_key))
    assert over.status_code == 422
    bad_cursor = client.get("/v1/flags", params={"cursor": "x:y"}, headers=bearer(api_key))
    assert bad_cursor.status_code == 422

    bad = client.post(
        f"/v1/flags/{raised[0]}/decision", json={"decision": "deleted"}, headers=bearer(api_key)
    )
    assert bad.status_code == 422
    unknown = client.post(
        "/v1/flags/f_unknown/decision", json={"decision": "removed"}, headers=bearer(api_key)
    )
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "flag_not_found"
    assert client.get("/v1/flags", params={"limit": 0}, headers=bearer(api_key)).status_code == 422
    assert client.get("/v1/flags").status_code == 401
