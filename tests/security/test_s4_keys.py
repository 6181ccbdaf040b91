"""S4: authentication and the key lifecycle.

Decisions this test pins down (see ``hashsvc.api.auth``):

- Missing, empty, malformed, unknown, revoked, disabled-platform and wrong-audience credentials
  (a case secret on a platform or admin route; a platform or operator key, or a webhook secret,
  on a case route) all answer **401** JSON ``not_authorized`` with ``WWW-Authenticate: Bearer``,
  and the presented token is never echoed.
- A *valid* key lacking the route's scope answers **403** ``forbidden`` (a platform key on an
  admin route, an operator key on a platform route, a scan-only key on the flags): the caller
  is known, it may not act.
- Credentials in the query string are refused with 401 even when the header is also valid: a
  credential-named parameter (``api_key``, ``api-key``, ``token``, ``secret``, ...) or any
  parameter whose value carries a token (``hsk_...``). URLs end up in logs and histories.
- Revoking a key, or disabling its platform, through the admin API is refused by every
  process at the next request (each reads Redis per request): measured over 3 real
  ``hashsvc serve`` processes polled every 20 ms.
- Failed authentications are counted per client address: past ``auth_failure_burst`` (then
  ``auth_failures_per_min``) the address gets 429 + ``Retry-After`` before its credentials
  are looked at, while other addresses are untouched. The client address is the TCP peer, or
  ``X-Forwarded-For`` when the peer is the trusted proxy 127.0.0.1 (uvicorn's default).
- Issued credentials are ``hsk_<kind>_`` + 43 url-safe characters = 256 random bits.
"""

from __future__ import annotations

import asyncio
import base64
import math
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from hashsvc.config import Settings
from hashsvc.platforms import create_admin_key
from hashsvc.security import new_case_id, new_token
from hashsvc.store import Store
from tests.helpers import PHOTOS, bearer, reupload, victim_hashes
from tests.live import LiveService, start_service
from tests.security.served_api import ServedApi

TOKEN_FORMAT = re.compile(r"^hsk_[a-z]+_[A-Za-z0-9_-]{40,}$")
UNTHROTTLED_AUTH = {"auth_failures_per_min": 1e6, "auth_failure_burst": 1_000_000}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Most tests here fail authentications on purpose, from one address; the throttling
    test starts its own service with the default threshold."""
    return settings.model_copy(
        update={**UNTHROTTLED_AUTH, "webhook_allowed_hosts": ("127.0.0.1:9",)}
    )


@dataclass
class Keys:
    admin: str
    platform: str  # default scopes: scan, review
    platform_id: str
    scan_only: str
    review_only: str
    revoked: str
    disabled: str
    case_id: str
    case_secret: str
    job_id: str


def _create_platform(client: httpx.Client, admin: str, name: str) -> tuple[str, str]:
    created = client.post("/v1/admin/platforms", json={"name": name}, headers=bearer(admin))
    assert created.status_code == 201, created.text
    return created.json()["platform_id"], created.json()["key"]["api_key"]


def _issue(client: httpx.Client, admin: str, platform_id: str, scopes: list[str]) -> Any:
    issued = client.post(
        f"/v1/admin/platforms/{platform_id}/keys", json={"scopes": scopes}, headers=bearer(admin)
    )
    assert issued.status_code == 201, issued.text
    return issued.json()


def admin_keys(settings: Settings, redis_url: str, count: int) -> list[str]:
    """Operator keys, issued as `hashsvc admin create-key` does (there is no HTTP route)."""

    async def issue() -> list[str]:
        store = Store.open(redis_url)
        try:
            return [
                (await create_admin_key(f"ops-{i}", settings, store)).api_key for i in range(count)
            ]
        finally:
            await store.close()

    return asyncio.run(issue())


@pytest.fixture
def keys(client: httpx.Client, settings: Settings, redis_url: str) -> Keys:
    [admin] = admin_keys(settings, redis_url, 1)
    platform_id, platform = _create_platform(client, admin, "KeyTube")
    scan_only = _issue(client, admin, platform_id, ["scan"])["api_key"]
    review_only = _issue(client, admin, platform_id, ["review"])["api_key"]
    revoked = _issue(client, admin, platform_id, ["scan", "review"])
    gone = client.delete(
        f"/v1/admin/platforms/{platform_id}/keys/{revoked['key_id']}", headers=bearer(admin)
    )
    assert gone.status_code == 204, gone.text
    disabled_id, disabled = _create_platform(client, admin, "GoneTube")
    off = client.post(f"/v1/admin/platforms/{disabled_id}/disable", headers=bearer(admin))
    assert off.status_code == 200, off.text
    case = client.post("/v1/cases", json={"hashes": victim_hashes(PHOTOS["coffee"], settings)})
    assert case.status_code == 201, case.text
    job = client.post(
        "/v1/scan/jobs",
        content=reupload("rocket"),
        headers={**bearer(platform), "content-type": "image/jpeg"},
    )
    assert job.status_code == 202, job.text
    return Keys(
        admin=admin,
        platform=platform,
        platform_id=platform_id,
        scan_only=scan_only,
        review_only=review_only,
        revoked=revoked["api_key"],
        disabled=disabled,
        case_id=case.json()["case_id"],
        case_secret=case.json()["secret"],
        job_id=job.json()["job_id"],
    )


# --- 401 in every case ------------------------------------------------------------------------

ROUTES = ("platform", "admin", "case")


def request_on(client: httpx.Client, keys: Keys, route: str, **kwargs: Any) -> httpx.Response:
    """One request to a route of each audience."""
    if route == "platform":
        return client.get("/v1/flags", **kwargs)
    if route == "admin":
        return client.get("/v1/admin/platforms", **kwargs)
    return client.get(f"/v1/cases/{keys.case_id}", **kwargs)


def _valid(keys: Keys, route: str) -> str:
    return {"platform": keys.platform, "admin": keys.admin, "case": keys.case_secret}[route]


def refused_credentials(keys: Keys) -> Iterator[tuple[str, dict[str, Any], tuple[str, ...]]]:
    """(what, headers, routes where it is a 401)."""
    yield "missing", {}, ROUTES
    yield "empty Authorization", {"Authorization": ""}, ROUTES
    yield "Bearer without a token", {"Authorization": "Bearer"}, ROUTES
    yield "empty X-API-Key", {"X-API-Key": ""}, ROUTES
    yield "Basic scheme", {"Authorization": "Basic dXNlcjpwYXNz"}, ROUTES
    yield "Token scheme", {"Authorization": f"Token {keys.platform}"}, ROUTES
    yield "garbage", bearer("garbage"), ROUTES
    yield "prefix only", bearer("hsk_platform_"), ROUTES
    yield "truncated key", bearer(keys.platform[:-1]), ROUTES
    yield "key + 1 char", bearer(keys.platform + "A"), ROUTES
    yield "upper-case kind", bearer(keys.platform.replace("platform", "PLATFORM", 1)), ROUTES
    yield "two tokens", {"Authorization": f"Bearer {keys.platform} {keys.platform}"}, ROUTES
    yield "10 kB token", bearer("hsk_platform_" + "A" * 10_000), ROUTES
    yield "non-ASCII", {"Authorization": "Bearer hsk_platform_\u00e9".encode()}, ROUTES
    yield "garbage X-API-Key", {"X-API-Key": "garbage"}, ("platform", "admin")
    yield "unknown platform key", bearer(new_token("platform")), ROUTES
    yield "unknown admin key", bearer(new_token("admin")), ROUTES
    # On a case route a well-formed case secret is checked against the case: wrong -> 404.
    yield "unknown case secret", bearer(new_token("case")), ("platform", "admin")
    yield "webhook secret", bearer(new_token("whsec")), ROUTES
    yield "revoked key", bearer(keys.revoked), ROUTES
    yield "revoked key as X-API-Key", {"X-API-Key": keys.revoked}, ("platform", "admin")
    yield "disabled platform's key", bearer(keys.disabled), ROUTES
    yield "case secret on API-key routes", bearer(keys.case_secret), ("platform", "admin")
    yield "case secret as X-API-Key", {"X-API-Key": keys.case_secret}, ("platform", "admin")
    yield "platform key on a case", bearer(keys.platform), ("case",)
    yield "admin key on a case", bearer(keys.admin), ("case",)
    yield "case secret in X-API-Key on a case", {"X-API-Key": keys.case_secret}, ("case",)


def assert_401(response: httpx.Response, presented: dict[str, Any], what: str) -> None:
    assert response.status_code == 401, (what, response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json"), what
    assert response.headers["www-authenticate"].startswith("Bearer"), what
    error = response.json()["error"]
    assert error["code"] == "not_authorized", what
    assert error["message"], what
    for value in presented.values():
        text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
        token = text.split()[-1] if text.split() else ""
        if len(token) > 20:
            assert token not in response.text, f"{what}: the presented token is echoed"


def test_every_refused_credential_is_a_401_with_www_authenticate(
    client: httpx.Client, keys: Keys
) -> None:
    for route in ROUTES:  # the valid credential of each route opens it
        ok = request_on(client, keys, route, headers=bearer(_valid(keys, route)))
        assert ok.status_code == 200, (route, ok.text)
    cells = 0
    for what, headers, routes in refused_credentials(keys):
        for route in routes:
            assert_401(request_on(client, keys, route, headers=headers), headers, what)
            cells += 1
    # The other routes refuse the same way (scan, jobs, decisions, withdrawal).
    for headers in ({}, bearer(keys.revoked), bearer(keys.case_secret), bearer(keys.disabled)):
        for response in (
            client.post("/v1/scan", json={"hashes": []}, headers=headers),
            client.get(f"/v1/scan/jobs/{keys.job_id}", headers=headers),
            client.post("/v1/flags/f_x/decision", json={"decision": "removed"}, headers=headers),
        ):
            assert_401(response, headers, f"{response.request.method} {response.request.url}")
            cells += 1
    for headers in ({}, bearer(keys.revoked), bearer(keys.platform), bearer(keys.admin)):
        response = client.delete(f"/v1/cases/{keys.case_id}", headers=headers)
        assert_401(response, headers, f"DELETE case with {sorted(headers)}")
        cells += 1
    # The case secret is the authentication of a case: a wrong secret answers exactly as an
    # unknown case (404 case_not_found, see S2), not 401, so that neither is distinguishable.
    wrong = client.get(f"/v1/cases/{keys.case_id}", headers=bearer(new_token("case")))
    unknown = client.get(f"/v1/cases/{new_case_id()}", headers=bearer(keys.case_secret))
    assert wrong.status_code == 404
    assert wrong.json()["error"]["code"] == "case_not_found"
    assert (wrong.status_code, wrong.content) == (unknown.status_code, unknown.content)
    print(f"\nS4: {cells} refused credentials, each a 401 JSON with WWW-Authenticate")


def test_valid_keys_without_the_scope_get_403(
    client: httpx.Client, keys: Keys, settings: Settings
) -> None:
    hashes = {"hashes": victim_hashes(PHOTOS["astronaut"], settings)}
    for response in (
        client.get("/v1/admin/platforms", headers=bearer(keys.platform)),
        client.get("/v1/admin/audit", headers={"X-API-Key": keys.platform}),
        client.get("/v1/flags", headers=bearer(keys.admin)),
        client.post("/v1/scan", json=hashes, headers=bearer(keys.admin)),
        client.get(f"/v1/scan/jobs/{keys.job_id}", headers=bearer(keys.admin)),
        client.get("/v1/flags", headers=bearer(keys.scan_only)),
        client.post("/v1/scan", json=hashes, headers=bearer(keys.review_only)),
        client.get(f"/v1/scan/jobs/{keys.job_id}", headers=bearer(keys.review_only)),
    ):
        assert response.status_code == 403, (response.request.url, response.text)
        assert response.json()["error"]["code"] == "forbidden"
    assert client.get("/v1/flags", headers=bearer(keys.review_only)).status_code == 200
    assert client.post("/v1/scan", json=hashes, headers=bearer(keys.scan_only)).status_code == 200


# --- credentials in the query string --------------------------------------------------------

QUERY_NAMES = (
    "api_key",
    "apikey",
    "API_KEY",
    "api-key",
    "key",
    "token",
    "access_token",
    "access-token",
    "secret",
    "auth",
    "authorization",
    "x-api-key",
)


def test_credentials_in_the_query_string_are_refused(client: httpx.Client, keys: Keys) -> None:
    refused = 0
    for route in ROUTES:
        valid = _valid(keys, route)
        with_header = bearer(valid)
        for name in QUERY_NAMES:
            for headers in ({}, with_header):  # refused even beside a valid header
                response = request_on(client, keys, route, params={name: valid}, headers=headers)
                assert_401(response, {}, f"{route} ?{name}= with {sorted(headers)}")
                assert valid not in response.text
                refused += 1
        # Under any other name, a value carrying a credential is refused too.
        for name in ("q", "case_secret", "password", "bearer"):
            response = request_on(client, keys, route, params={name: valid}, headers=with_header)
            assert_401(response, {}, f"{route} ?{name}=<credential>")
            refused += 1
        # Ordinary parameters are not mistaken for credentials.
        plain = request_on(client, keys, route, params={"limit": "5"}, headers=with_header)
        assert plain.status_code == 200, (route, plain.text)
    named = client.get("/v1/flags", params={"status": "open"}, headers=bearer(keys.platform))
    assert named.status_code == 200
    print(f"\nS4: {refused} query-string credentials refused")


# --- revocation across processes ------------------------------------------------------------

POLL_INTERVAL_S = 0.02
SERVE_ENV = {
    "HASHSVC_AUTH_FAILURES_PER_MIN": "1000000",
    "HASHSVC_AUTH_FAILURE_BURST": "1000000",
    "HASHSVC_SCAN_RATE_PER_S": "1000000",
    "HASHSVC_SCAN_BURST": "1000000",
}


@dataclass(frozen=True)
class Sample:
    sent: float
    received: float
    status: int


class Poller:
    """Sends a request with ``key`` to one process every 20 ms, recording every answer."""

    def __init__(self, url: str, key: str) -> None:
        self.url = url
        self.key = key
        self.samples: list[Sample] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Poller:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=5) as http:
            while not self._stop.is_set():
                sent = time.monotonic()
                status = http.get("/v1/flags", headers=bearer(self.key)).status_code
                self.samples.append(Sample(sent, time.monotonic(), status))
                self._stop.wait(max(0.0, POLL_INTERVAL_S - (time.monotonic() - sent)))

    def count(self, status: int) -> int:
        return sum(1 for s in self.samples if s.status == status)


def switch_delay(
    servers: list[ServedApi], key: str, before: int, after: int, act: Callable[[], None]
) -> list[float]:
    """Poll every server with ``key``, run ``act`` once each answers ``before``, then poll on
    for 1.5 s. Returns, per server, the delay from the end of ``act`` (its response) to the
    first answer ``after``; asserts no answer ``before`` comes later, none is something else,
    and every request sent more than 1 s after ``act`` is answered ``after``."""
    with _Pollers(servers, key) as pollers:
        deadline = time.monotonic() + 10
        while min(p.count(before) for p in pollers) < 5:
            assert time.monotonic() < deadline, [p.samples[-1:] for p in pollers]
            time.sleep(POLL_INTERVAL_S)
        act()
        acted = time.monotonic()
        time.sleep(1.5)
    delays = []
    for poller in pollers:
        assert {s.status for s in poller.samples} <= {before, after}, poller.samples
        first = next(i for i, s in enumerate(poller.samples) if s.status == after)
        assert all(s.status == after for s in poller.samples[first:]), "flapping"
        assert all(s.status == after for s in poller.samples if s.sent > acted + 1.0)
        delays.append(poller.samples[first].received - acted)
        assert sum(1 for s in poller.samples if s.sent > acted) >= 20, "polled too rarely"
    return delays


class _Pollers:
    def __init__(self, servers: list[ServedApi], key: str) -> None:
        self.pollers = [Poller(s.url, key) for s in servers]

    def __enter__(self) -> list[Poller]:
        for poller in self.pollers:
            poller.__enter__()
        return self.pollers

    def __exit__(self, *_: object) -> None:
        for poller in self.pollers:
            poller.__exit__()


@pytest.fixture
def three_servers(redis_url: str, tmp_path: Path) -> Iterator[list[ServedApi]]:
    """Three `hashsvc serve` processes on the test Redis, started side by side."""
    with ThreadPoolExecutor(3) as pool:
        futures = [
            pool.submit(ServedApi, redis_url, tmp_path / f"serve-{i}", SERVE_ENV) for i in range(3)
        ]
    started = [f.result() for f in futures if f.exception() is None]
    try:
        assert len(started) == 3, [str(f.exception()) for f in futures]
        yield started
    finally:
        for server in started:
            server.stop()


def test_revocation_and_disable_reach_every_process(
    three_servers: list[ServedApi], settings: Settings, redis_url: str
) -> None:
    [admin] = admin_keys(settings, redis_url, 1)
    first, second, third = three_servers
    with httpx.Client(base_url=first.url, timeout=10) as http:
        platform_id, kept = _create_platform(http, admin, "ThreeProc")
        doomed = _issue(http, admin, platform_id, ["review"])

    def revoke() -> None:
        response = httpx.delete(
            f"{second.url}/v1/admin/platforms/{platform_id}/keys/{doomed['key_id']}",
            headers=bearer(admin),
        )
        assert response.status_code == 204, response.text

    revoked = switch_delay(three_servers, doomed["api_key"], 200, 401, revoke)
    for server in three_servers:  # only that key: the platform's other key still works
        assert httpx.get(f"{server.url}/v1/flags", headers=bearer(kept)).status_code == 200

    def toggle(action: str) -> Callable[[], None]:
        def act() -> None:
            url = f"{third.url}/v1/admin/platforms/{platform_id}/{action}"
            response = httpx.post(url, headers=bearer(admin))
            assert response.status_code == 200, response.text
            assert response.json()["disabled"] is (action == "disable")

        return act

    disabled = switch_delay(three_servers, kept, 200, 401, toggle("disable"))
    enabled = switch_delay(three_servers, kept, 401, 200, toggle("enable"))
    print(
        "\nS4 3 processes, polled every 20 ms; delay from the admin API's response to the first "
        f"refusal: revoke max {max(revoked) * 1000:.1f} ms {_ms(revoked)}, "
        f"disable max {max(disabled) * 1000:.1f} ms {_ms(disabled)}; "
        f"enable -> accepted again max {max(enabled) * 1000:.1f} ms"
    )
    assert max(revoked) <= 1.0
    assert max(disabled) <= 1.0
    assert max(enabled) <= 1.0


def _ms(delays: list[float]) -> list[str]:
    return [f"{d * 1000:.1f}" for d in delays]


# --- throttling of failed authentications --------------------------------------------------

ATTACKER, BYSTANDER = "127.0.0.3", "127.0.0.4"  # real loopback addresses (127.0.0.0/8)
WRONG_KEYS = 1000


def client_from(service: LiveService, address: str) -> httpx.Client:
    transport = httpx.HTTPTransport(local_address=address)
    return httpx.Client(base_url=service.url, transport=transport, timeout=10)


@pytest.fixture
def throttled(settings: Settings, redis_url: str) -> Iterator[LiveService]:
    """The service with the failure threshold of production (30/min, burst 30)."""
    live = start_service(
        settings.model_copy(update={"auth_failures_per_min": 30.0, "auth_failure_burst": 30}),
        redis_url,
    )
    yield live
    live.stop()


def test_wrong_keys_from_one_address_are_throttled(
    throttled: LiveService, client: httpx.Client, keys: Keys
) -> None:
    statuses: list[int] = []
    retry_after: list[int] = []
    with client_from(throttled, ATTACKER) as attacker:
        started = time.monotonic()
        for _ in range(WRONG_KEYS):
            response = attacker.get("/v1/flags", headers=bearer(new_token("platform")))
            statuses.append(response.status_code)
            if response.status_code == 429:
                assert response.json()["error"]["code"] == "rate_limited"
                retry_after.append(int(response.headers["retry-after"]))
        elapsed = time.monotonic() - started
        allowed = 30 + math.ceil(elapsed * 30 / 60) + 1
        assert set(statuses) == {401, 429}
        assert statuses[:30] == [401] * 30  # the burst
        assert 30 <= statuses.count(401) <= allowed
        assert statuses.count(429) >= WRONG_KEYS - allowed
        assert all(1 <= r <= 60 for r in retry_after), sorted(set(retry_after))
        # A throttled address is refused before its credentials are looked at: a guess that
        # would have been right learns nothing.
        assert attacker.get("/v1/flags", headers=bearer(keys.platform)).status_code == 429
        # Trusted proxy (127.0.0.1): X-Forwarded-For names the client; from anyone else the
        # header is ignored, so an attacker cannot hide behind it.
        spoofed = {**bearer(keys.platform), "X-Forwarded-For": "203.0.113.8"}
        assert attacker.get("/v1/flags", headers=spoofed).status_code == 429
    with httpx.Client(base_url=throttled.url, timeout=10) as proxy:
        behind = proxy.get(
            "/v1/flags", headers={**bearer(keys.platform), "X-Forwarded-For": ATTACKER}
        )
        assert behind.status_code == 429
        other = proxy.get(
            "/v1/flags", headers={**bearer(keys.platform), "X-Forwarded-For": "203.0.113.9"}
        )
        assert other.status_code == 200
    with client_from(throttled, BYSTANDER) as bystander:  # another address: untouched
        assert bystander.get("/v1/flags", headers=bearer(keys.platform)).status_code == 200
        owner = bystander.get(f"/v1/cases/{keys.case_id}", headers=bearer(keys.case_secret))
        assert owner.status_code == 200  # the case is not locked for its owner
        wrong = bystander.get("/v1/flags", headers=bearer(new_token("platform")))
        assert wrong.status_code == 401
    # Retry-After is honest: after it, the attacker's address may try once more. Take it from
    # a fresh refusal: a slot regained since the loop's last 429 may have been spent by then.
    with client_from(throttled, ATTACKER) as attacker:
        for _ in range(5):
            refused = attacker.get("/v1/flags", headers=bearer(new_token("platform")))
            if refused.status_code == 429:
                break
        assert refused.status_code == 429
        time.sleep(int(refused.headers["retry-after"]))
        again = attacker.get("/v1/flags", headers=bearer(new_token("platform")))
        assert again.status_code == 401
        assert attacker.get("/v1/flags", headers=bearer(keys.platform)).status_code in (200, 429)
    print(
        f"\nS4 throttling: {WRONG_KEYS} wrong keys in {elapsed:.1f} s from {ATTACKER}: "
        f"{statuses.count(401)} x 401 then {statuses.count(429)} x 429 "
        f"(Retry-After {min(retry_after)}-{max(retry_after)} s); other address and the case "
        "owner unaffected; X-Forwarded-For honoured from 127.0.0.1 only"
    )


# --- issued credentials ---------------------------------------------------------------------

PLATFORM_KEYS, CASE_SECRETS, ADMIN_KEYS, WEBHOOK_SECRETS = 150, 150, 40, 5


def test_issued_credentials_are_256_random_bits(
    client: httpx.Client, settings: Settings, redis_url: str
) -> None:
    issued: dict[str, list[str]] = {"platform": [], "admin": [], "case": [], "whsec": []}
    issued["admin"] = admin_keys(settings, redis_url, ADMIN_KEYS)
    admin = issued["admin"][0]
    for i in range(WEBHOOK_SECRETS):
        created = client.post(
            "/v1/admin/platforms",
            json={"name": f"Hooked {i}", "webhook_url": "http://127.0.0.1:9/hook"},
            headers=bearer(admin),
        )
        assert created.status_code == 201, created.text
        issued["platform"].append(created.json()["key"]["api_key"])
        issued["whsec"].append(created.json()["webhook_secret"])
    platform_id = created.json()["platform_id"]
    while len(issued["platform"]) < PLATFORM_KEYS:
        issued["platform"].append(_issue(client, admin, platform_id, ["scan"])["api_key"])
    hashes = victim_hashes(PHOTOS["camera"], settings)
    for _ in range(CASE_SECRETS):
        case = client.post("/v1/cases", json={"hashes": hashes})
        assert case.status_code == 201, case.text
        issued["case"].append(case.json()["secret"])

    every = [token for tokens in issued.values() for token in tokens]
    for kind, tokens in issued.items():
        for token in tokens:
            assert TOKEN_FORMAT.match(token), token[:12]
            assert token.startswith(f"hsk_{kind}_")
    randoms = [token.split("_", 2)[2] for token in every]  # hsk_<kind>_<random part>
    assert len(set(every)) == len(every)
    assert len(set(randoms)) == len(randoms)
    raw = [base64.urlsafe_b64decode(r + "=") for r in randoms]
    assert all(len(r) == 43 for r in randoms)
    assert all(len(b) == 32 for b in raw)
    bits = bit_balance(raw)
    varying = sum(1 for ones in bits if 0 < ones < len(raw))
    n = len(raw)
    worst = max(abs(ones - n / 2) / math.sqrt(n / 4) for ones in bits)
    entropy = byte_entropy(b"".join(raw))
    counts = ", ".join(f"{kind} {len(tokens)}" for kind, tokens in issued.items())
    print(
        f"\nS4 issued: {len(every)} credentials ({counts}), all distinct; random part "
        f"43 chars = 32 bytes; {varying}/256 bits vary, "
        f"worst bit bias {worst:.1f} sigma; byte entropy {entropy:.3f} bits/byte"
    )
    assert varying == 256  # >= 128 required: every one of the 256 bits is random
    assert worst < 5.0
    assert entropy > 7.9


def bit_balance(values: list[bytes]) -> list[int]:
    """For each bit position, how many values have it set."""
    counts = [0] * (8 * len(values[0]))
    for value in values:
        number = int.from_bytes(value, "big")
        for bit in range(len(counts)):
            counts[bit] += (number >> bit) & 1
    return counts


def byte_entropy(data: bytes) -> float:
    counts = [0] * 256
    for byte in data:
        counts[byte] += 1
    return -sum(c / len(data) * math.log2(c / len(data)) for c in counts if c)


def test_detectors_see_weak_keys() -> None:
    """The entropy checks above can fail: a key with a constant half does."""
    weak = [secrets.token_bytes(16) + b"\0" * 16 for _ in range(200)]
    assert sum(1 for ones in bit_balance(weak) if 0 < ones < 200) == 128
    assert byte_entropy(b"".join(weak)) < 7.9
    assert not TOKEN_FORMAT.match("hsk_platform_" + "a" * 39)
