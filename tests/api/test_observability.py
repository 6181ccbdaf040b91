"""Metrics and logs of the real app under a real workload: per-route counters move, labels
hold route templates (never ids), every log line is JSON with the request id, and nothing
sensitive (case secrets, API keys, victims' hashes, image bytes) is ever logged."""

from __future__ import annotations

import base64
import io
import json
import logging
import re
from collections.abc import Iterator

import httpx
import pytest

from hashsvc.config import Settings
from hashsvc.observability import JsonFormatter
from tests.helpers import PHOTOS, bearer, reupload, upload, victim_hashes

SERIES = re.compile(r"^(?P<name>[a-z_]+)(?:\{(?P<labels>.*)\})? (?P<value>\S+)$")


def scrape(client: httpx.Client) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = {}
    for line in response.text.splitlines():
        if line.startswith("#") or not line:
            continue
        found = SERIES.match(line)
        assert found, line
        labels = frozenset(re.findall(r'(\w+)="([^"]*)"', found["labels"] or ""))
        samples[(found["name"], labels)] = float(found["value"])
    return samples


def value(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """Every record logged in this process at DEBUG and above, formatted as in production."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(lambda r: not r.name.startswith(("httpx", "httpcore")))  # the test client
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


def test_metrics_and_logs_of_a_real_workload(
    client: httpx.Client, api_key: str, settings: Settings, captured: io.StringIO
) -> None:
    before = scrape(client)
    hashes = victim_hashes(PHOTOS["coffee"], settings)
    created = client.post("/v1/cases", json={"hashes": hashes})
    assert created.status_code == 201, created.text
    case_id, secret = created.json()["case_id"], created.json()["secret"]
    request_ids = {created.headers["X-Request-ID"]}

    image = reupload("coffee", "resize_half")
    responses = [
        client.get(f"/v1/cases/{case_id}", headers=bearer(secret)),
        client.get("/v1/cases/case_doesnotexist0000000000", headers=bearer(secret)),
        client.post("/v1/scan", files=upload(image), headers=bearer(api_key)),
        client.post("/v1/scan", json={"hashes": hashes}, headers=bearer(api_key)),
        client.post(
            "/v1/scan",
            json={"hashes": [{"signal": "phash", "hash": "95b56a4a2c2ed2d3"}]},
            headers=bearer(api_key),
        ),
        client.post("/v1/scan", json={"hashes": hashes}, headers=bearer("hsk_platform_wrong")),
        client.get("/no/such/path/with-an-id-1234"),
    ]
    middle = scrape(client)
    responses.append(client.delete(f"/v1/cases/{case_id}", headers=bearer(secret)))
    statuses = [r.status_code for r in responses]
    assert statuses == [200, 404, 200, 200, 200, 401, 404, 204], statuses
    assert responses[2].json()["matched"] is True
    assert responses[3].json()["matched"] is True
    request_ids |= {r.headers["X-Request-ID"] for r in responses}
    after = scrape(client)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    total = "hashsvc_http_requests_total"
    assert moved(total, method="POST", route="/v1/cases", status="201") == 1
    assert moved(total, method="GET", route="/v1/cases/{case_id}", status="200") == 1
    assert moved(total, method="GET", route="/v1/cases/{case_id}", status="404") == 1
    assert moved(total, method="DELETE", route="/v1/cases/{case_id}", status="204") == 1
    assert moved(total, method="POST", route="/v1/scan", status="200") == 3
    assert moved(total, method="POST", route="/v1/scan", status="401") == 1
    assert moved(total, method="GET", route="unmatched", status="404") == 1
    histogram = "hashsvc_http_request_duration_seconds_count"
    assert moved(histogram, method="POST", route="/v1/scan", status="200") == 3
    assert moved("hashsvc_scans_total", input="image", outcome="matched") == 1
    assert moved("hashsvc_scans_total", input="hashes", outcome="matched") == 1
    assert moved("hashsvc_scans_total", input="hashes", outcome="not_matched") == 1
    assert moved("hashsvc_scan_matches_total", signal="pdq") >= 2
    assert value(middle, "hashsvc_index_size", signal="pdq") == 1
    assert value(middle, "hashsvc_bank_size", signal="pdq") == 1
    assert value(after, "hashsvc_bank_size", signal="pdq") == 0
    assert value(after, "hashsvc_replica_lag_seconds") >= 0
    jobs = {s: value(after, "hashsvc_jobs", state=s) for s in ("accepted", "done", "failed")}
    assert jobs["accepted"] == jobs["done"] + jobs["failed"] + value(
        after, "hashsvc_jobs", state="pending"
    )
    for name in ("hashsvc_job_backlog", "hashsvc_jobs_dead_lettered", "hashsvc_replica_rebuilds"):
        assert (name, frozenset()) in after, name

    # No ids in labels: every route label is a template or "unmatched".
    routes = {v for (_, labels) in after for k, v in labels if k == "route"}
    assert routes <= route_templates(client) | {"unmatched"}, routes
    text = client.get("/metrics").text
    assert case_id not in text
    assert "with-an-id-1234" not in text

    lines = [json.loads(line) for line in captured.getvalue().splitlines()]  # all JSON
    completed = [e for e in lines if e["logger"] == "hashsvc.request"]
    assert {e["request_id"] for e in completed} >= request_ids
    for entry in completed:
        assert set(entry) >= {"method", "route", "status", "duration_ms", "request_id"}
    scan_log = next(e for e in completed if e["request_id"] == responses[2].headers["X-Request-ID"])
    assert (scan_log["method"], scan_log["route"], scan_log["status"]) == ("POST", "/v1/scan", 200)

    log_text = captured.getvalue()
    sensitive = [
        secret,
        api_key,
        case_id,
        "95b56a4a2c2ed2d3",
        base64.b64encode(image[:48]).decode(),
    ]
    sensitive += [h["hash"] for h in hashes]
    sensitive += [h["hash"].upper() for h in hashes]
    for item in sensitive:
        assert item not in log_text, f"logged: {item[:12]}..."
    assert image[:64].hex() not in log_text


def route_templates(client: httpx.Client) -> set[str]:
    """The app's route templates: its OpenAPI paths, the docs and the victim page."""
    paths = set(client.get("/openapi.json").json()["paths"])
    return paths | {"/", "/assets/{name}", "/openapi.json", "/docs", "/redoc"}
