"""S1: the authorization matrix (BOLA, BFLA, property-level authorization).

Every route of the app (every operation of its OpenAPI schema, plus the routes kept out of the
schema: docs and the victim page) x every principal (anonymous, platforms P1 and P2, the
secrets of cases C1 and C2, an operator) x every object the route can name (P1's, P2's, a
withdrawn case, a nonexistent id), sent to the real app over real HTTP, checked against the
declarative ``POLICY`` below. Every JSON-body route is also sent bodies with extra fields
(``status``, ``platform_id``, ``quality``, ``case_id``, ``secret_hash``): 422 for whoever gets
past authentication. Response bodies are searched for what their audience must never see.

The expected outcome of a cell follows from the route's audience and the object's owner:

- ``public``: everyone gets the success status (404 for a nonexistent asset).
- ``victim`` (case routes, the case secret *is* the authentication): no credential or any
  non-case credential is 401; a case secret opens its own case only; another case, a
  withdrawn case and an unknown id all answer the identical 404 ``case_not_found``.
- ``platform`` (scope scan or review): no credential or a case secret is 401; an operator key
  is 403 (valid, lacks the scope); a platform acts on its own jobs and flags only, and another
  platform's job or flag answers exactly the bytes of a nonexistent one.
- ``feed`` (the partner hash feed, scope feed, which none of the principals has): no credential
  or a case secret is 401, every other key 403.
- ``admin``: no credential or a case secret is 401, a platform key 403; the operator acts on
  every platform, and a nonexistent platform or key (or a key named under another platform) is
  404.

The matrix must cover the app: a route without a policy entry, or an entry without a route,
fails the test.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import redis
from fastapi import FastAPI
from starlette.routing import BaseRoute

from hashsvc.api.app import create_app
from hashsvc.config import Settings
from hashsvc.security import new_case_id, new_flag_id, new_job_id, new_key_id
from hashsvc.store import keys
from tests.helpers import (
    PHOTOS,
    balanced_pdq,
    bearer,
    make_admin_key,
    reupload,
    upload,
    victim_hashes,
)

ANON, P1, P2, C1, C2, ADMIN = "anonymous", "P1", "P2", "C1", "C2", "admin"
PRINCIPALS = (ANON, P1, P2, C1, C2, ADMIN)
PLATFORMS = (P1, P2)
VICTIMS = (C1, C2)
EVERYONE = "*"  # owner of an object any principal of the audience may act on
NOBODY = None  # a nonexistent (or withdrawn) object

EXTRA_FIELDS: dict[str, Any] = {
    "status": "decided",
    "platform_id": "p_0000000000000000",
    "quality": 100,
    "case_id": "case_AAAAAAAAAAAAAAAAAAAAAA",
    "secret_hash": "0" * 64,
}
# Headers that legitimately differ between two otherwise identical responses.
VOLATILE_HEADERS = frozenset({"date", "x-request-id"})


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The matrix sends hundreds of failing authentications from one address on purpose."""
    return settings.model_copy(
        update={"auth_failures_per_min": 1e6, "auth_failure_burst": 1_000_000}
    )


# --- the world the matrix runs in -------------------------------------------------------------


@dataclass
class World:
    """Fixture objects and credentials, all created through the real API."""

    tokens: dict[str, str]  # principal -> credential (none for anonymous)
    platform_ids: dict[str, str]
    platform_names: dict[str, str]
    spare_keys: dict[str, tuple[str, str]]  # platform -> (key_id, api key), revoked in phase 2
    cases: dict[str, str]  # C1, C2, C0 (withdrawn) -> case id
    jobs: dict[str, str]
    flags: dict[str, str]
    stored_hashes: set[str]  # hex codes of every banked victim hash
    upload_names: set[str]  # file names platforms uploaded
    near_c1: list[dict[str, Any]]  # hashes close to C1's: a scan of them matches C1
    other_photo: list[dict[str, Any]]  # hashes of a photo no case holds
    hash_refs: dict[str, str] = field(default_factory=dict)  # active, quarantined x2
    allow_entry: str = ""  # an allow-list entry, removed in phase 2
    missing: dict[str, str] = field(default_factory=dict)

    def headers(self, principal: str) -> dict[str, str]:
        return bearer(self.tokens[principal]) if principal in self.tokens else {}


def _flip_bits(hex_code: str, bits: int) -> str:
    value = int(hex_code, 16)
    for bit in range(bits):
        value ^= 1 << (bit * 7)
    return format(value, f"0{len(hex_code)}x")


def _scan_flag(client: httpx.Client, key: str, photo: str, file_name: str) -> str:
    scan = client.post("/v1/scan", files=upload(reupload(photo), file_name), headers=bearer(key))
    assert scan.status_code == 200, scan.text
    [flag_id] = {m["flag_id"] for m in scan.json()["matches"]}
    return str(flag_id)


def build_world(client: httpx.Client, settings: Settings, redis_url: str) -> World:
    admin = make_admin_key(settings, redis_url, "matrix-operator")
    tokens = {ADMIN: admin}
    names = {P1: "AlphaVids Matrix", P2: "BetaPics Matrix"}
    ids, spare = {}, {}
    for principal, name in names.items():
        created = client.post("/v1/admin/platforms", json={"name": name}, headers=bearer(admin))
        assert created.status_code == 201, created.text
        ids[principal] = created.json()["platform_id"]
        tokens[principal] = created.json()["key"]["api_key"]
        extra = client.post(
            f"/v1/admin/platforms/{ids[principal]}/keys", json={}, headers=bearer(admin)
        )
        assert extra.status_code == 201, extra.text
        spare[principal] = (extra.json()["key_id"], extra.json()["api_key"])

    cases, stored = {}, set()
    for label, photo in ((C1, "coffee"), (C2, "rocket"), ("C0", "chelsea")):
        hashes = victim_hashes(PHOTOS[photo], settings)
        stored |= {h["hash"] for h in hashes}
        created = client.post("/v1/cases", json={"hashes": hashes})
        assert created.status_code == 201, created.text
        cases[label] = created.json()["case_id"]
        if label in VICTIMS:
            tokens[label] = created.json()["secret"]
        else:  # C0: withdrawn before the matrix runs
            gone = client.delete(
                f"/v1/cases/{cases[label]}", headers=bearer(created.json()["secret"])
            )
            assert gone.status_code == 204, gone.text

    uploads = {P1: ("coffee", "p1-holiday-upload.jpg"), P2: ("rocket", "p2-party-upload.jpg")}
    flags, jobs = {}, {}
    for principal, (photo, file_name) in uploads.items():
        flags[principal] = _scan_flag(client, tokens[principal], photo, file_name)
        job = client.post(
            "/v1/scan/jobs",
            files=upload(reupload(photo, "resize_half"), "job-" + file_name),
            headers=bearer(tokens[principal]),
        )
        assert job.status_code == 202, job.text
        jobs[principal] = job.json()["job_id"]

    # Trust objects: two banked photos whose PDQ hashes operators allow-list, which
    # quarantines them (one to release, one to confirm then reset); an entry to remove.
    benign = [victim_hashes(PHOTOS[p], settings) for p in ("camera", "retina")]
    for hashes in benign:
        banked = client.post("/v1/cases", json={"hashes": hashes})
        assert banked.status_code == 201, banked.text
        stored |= {h["hash"] for h in hashes}
    listed = client.post(
        "/v1/admin/allowlist",
        json={  # near the banked hashes (the operator's own entries are no stored hashes)
            "hashes": [
                {"signal": "pdq", "hash": _flip_bits(h["hash"], 3)}
                for hashes in benign
                for h in hashes
                if h["signal"] == "pdq"
            ]
        },
        headers=bearer(admin),
    )
    assert listed.status_code == 201, listed.text
    quarantined = sorted(listed.json()["quarantined"])
    assert len(quarantined) == 2, listed.text
    spare_entry = client.post(
        "/v1/admin/allowlist",
        json={"hashes": [{"signal": "pdq", "hash": balanced_pdq(random.Random(5))}]},
        headers=bearer(admin),
    )
    assert spare_entry.status_code == 201, spare_entry.text
    with redis.Redis.from_url(redis_url, decode_responses=True) as r:
        c1_hash_ids = sorted(r.hkeys(keys.case_hashes(cases[C1])))

    c1_hashes = victim_hashes(PHOTOS["coffee"], settings)
    near = [{"signal": h["signal"], "hash": _flip_bits(h["hash"], 3)} for h in c1_hashes]
    return World(
        tokens=tokens,
        platform_ids=ids,
        platform_names=names,
        spare_keys=spare,
        cases=cases,
        jobs=jobs,
        flags=flags,
        stored_hashes=stored,
        upload_names={n for _, n in uploads.values()} | {"job-" + n for _, n in uploads.values()},
        near_c1=near,
        other_photo=victim_hashes(PHOTOS["astronaut"], settings),
        hash_refs={"active": f"h{c1_hash_ids[0]}", "q1": quarantined[0], "q2": quarantined[1]},
        allow_entry=spare_entry.json()["entries"][0]["entry_id"],
        missing={
            "case": new_case_id(),
            "job": new_job_id(),
            "flag": new_flag_id(),
            "platform": "p_" + "0" * 16,
            "key": new_key_id(),
            "hash": "h99999999999",
            "entry": "a99999999999",
        },
    )


# --- the policy table ---------------------------------------------------------------------------

Params = Callable[[World], dict[str, str]]
JsonBody = Callable[[World], dict[str, Any]]


@dataclass(frozen=True)
class Target:
    """An object a route can name: its path parameters and who owns it."""

    label: str
    params: Params
    owner: str | None  # a principal, EVERYONE, or NOBODY (nonexistent/withdrawn)


@dataclass(frozen=True)
class Policy:
    method: str
    path: str
    audience: str  # public | victim | platform | feed (refused to every principal) | admin
    success: int
    targets: tuple[Target, ...]
    json_body: JsonBody | None = None  # the valid JSON body (extra fields are added to it)
    upload: bool = False  # the main cell sends an image upload instead of the JSON body
    nested_items: str | None = None  # a list of hash items, checked for extra fields too
    phase: int = 1  # 2: state-changing successes, run after everything else, in table order
    inspect: bool = True  # search the responses for leaks (not the docs and the web page)
    issues: str | None = None  # the field of a 2xx body holding a credential issued to the caller


def _no_params(_: World) -> dict[str, str]:
    return {}


ANY = (Target("-", _no_params, EVERYONE),)


def _cases() -> tuple[Target, ...]:
    return (
        Target("C1", lambda w: {"case_id": w.cases[C1]}, C1),
        Target("C2", lambda w: {"case_id": w.cases[C2]}, C2),
        Target("C0-withdrawn", lambda w: {"case_id": w.cases["C0"]}, NOBODY),
        Target("missing", lambda w: {"case_id": w.missing["case"]}, NOBODY),
    )


def _owned(param: str, kind: str, objects: Callable[[World], dict[str, str]]) -> tuple[Target, ...]:
    return (
        Target(P1, lambda w: {param: objects(w)[P1]}, P1),
        Target(P2, lambda w: {param: objects(w)[P2]}, P2),
        Target("missing", lambda w: {param: w.missing[kind]}, NOBODY),
    )


PLATFORM_TARGETS = (
    Target(P1, lambda w: {"platform_id": w.platform_ids[P1]}, ADMIN),
    Target(P2, lambda w: {"platform_id": w.platform_ids[P2]}, ADMIN),
    Target("missing", lambda w: {"platform_id": w.missing["platform"]}, NOBODY),
)
KEY_TARGETS = (
    Target(
        "P1/P1-key",
        lambda w: {"platform_id": w.platform_ids[P1], "key_id": w.spare_keys[P1][0]},
        ADMIN,
    ),
    Target(
        "P2/P2-key",
        lambda w: {"platform_id": w.platform_ids[P2], "key_id": w.spare_keys[P2][0]},
        ADMIN,
    ),
    Target(  # a key named under the wrong platform: must not be revoked
        "P1/P2-key",
        lambda w: {"platform_id": w.platform_ids[P1], "key_id": w.spare_keys[P2][0]},
        NOBODY,
    ),
    Target(
        "missing",
        lambda w: {"platform_id": w.platform_ids[P1], "key_id": w.missing["key"]},
        NOBODY,
    ),
    Target(
        "missing-platform",
        lambda w: {"platform_id": w.missing["platform"], "key_id": w.spare_keys[P1][0]},
        NOBODY,
    ),
)


def _hash(label: str) -> tuple[Target, ...]:
    return (
        Target(label, lambda w: {"hash_ref": w.hash_refs[label]}, ADMIN),
        Target("missing", lambda w: {"hash_ref": w.missing["hash"]}, NOBODY),
    )


ENTRY_TARGETS = (
    Target("entry", lambda w: {"entry_id": w.allow_entry}, ADMIN),
    Target("missing", lambda w: {"entry_id": w.missing["entry"]}, NOBODY),
)
ASSET_TARGETS = (
    Target("app.js", lambda _: {"name": "app.js"}, EVERYONE),
    Target("missing", lambda _: {"name": "no-such-asset.js"}, NOBODY),
)

POLICY: tuple[Policy, ...] = (
    # victims
    Policy(
        "POST",
        "/v1/cases",
        "public",  # a victim has no credential yet; credentials are ignored
        201,
        ANY,
        json_body=lambda w: {"hashes": w.other_photo},
        nested_items="hashes",
        issues="secret",  # the new case's own id and secret, to whoever created it
    ),
    Policy("GET", "/v1/cases/{case_id}", "victim", 200, _cases()),
    # platforms
    Policy(
        "POST",
        "/v1/scan",
        "platform",
        200,
        ANY,
        json_body=lambda w: {"hashes": w.near_c1},
        nested_items="hashes",
    ),
    Policy(
        "POST",
        "/v1/scan/jobs",
        "platform",
        202,
        ANY,
        json_body=lambda _: {"uri": "file:///srv/uploads/a.jpg"},
        upload=True,
    ),
    Policy(
        "GET", "/v1/scan/jobs/{job_id}", "platform", 200, _owned("job_id", "job", lambda w: w.jobs)
    ),
    Policy("GET", "/v1/flags", "platform", 200, ANY),
    Policy(
        "POST",
        "/v1/flags/{flag_id}/decision",
        "platform",
        200,
        _owned("flag_id", "flag", lambda w: w.flags),
        json_body=lambda _: {"decision": "needs_more_info"},
    ),
    # partners: the hash feed (scope feed, which no principal of the matrix has: the bank's
    # hashes are what the feed serves, see tests/partner)
    Policy("GET", "/v1/hashes/snapshot", "feed", 200, ANY),
    Policy("GET", "/v1/hashes/feed", "feed", 200, ANY),
    # operators
    Policy("GET", "/v1/admin/platforms", "admin", 200, ANY),
    Policy(
        "POST",
        "/v1/admin/platforms",
        "admin",
        201,
        ANY,
        json_body=lambda _: {"name": "GammaNew Matrix"},
    ),
    Policy("GET", "/v1/admin/platforms/{platform_id}", "admin", 200, PLATFORM_TARGETS),
    Policy(
        "POST",
        "/v1/admin/platforms/{platform_id}/keys",
        "admin",
        201,
        PLATFORM_TARGETS,
        json_body=lambda _: {"scopes": ["review"]},
    ),
    Policy("GET", "/v1/admin/audit", "admin", 200, ANY),
    Policy(
        "DELETE",
        "/v1/admin/platforms/{platform_id}/keys/{key_id}",
        "admin",
        204,
        KEY_TARGETS,
        phase=2,
    ),
    Policy(
        "POST", "/v1/admin/platforms/{platform_id}/disable", "admin", 200, PLATFORM_TARGETS, phase=2
    ),
    Policy(
        "POST", "/v1/admin/platforms/{platform_id}/enable", "admin", 200, PLATFORM_TARGETS, phase=2
    ),
    # operators: trust and safety (hashsvc/trust.py)
    Policy("GET", "/v1/admin/quarantine", "admin", 200, ANY),
    Policy("GET", "/v1/admin/stats", "admin", 200, ANY),
    Policy("GET", "/v1/admin/allowlist", "admin", 200, ANY),
    Policy("GET", "/v1/admin/hashes/{hash_ref}", "admin", 200, _hash("active")),
    Policy(
        "POST",
        "/v1/admin/allowlist",
        "admin",
        201,
        ANY,
        json_body=lambda _: {"hashes": [{"signal": "pdq", "hash": balanced_pdq(random.Random(9))}]},
        nested_items="hashes",
        phase=2,
    ),
    Policy("DELETE", "/v1/admin/allowlist/{entry_id}", "admin", 204, ENTRY_TARGETS, phase=2),
    Policy("POST", "/v1/admin/quarantine/{hash_ref}/release", "admin", 200, _hash("q1"), phase=2),
    Policy("POST", "/v1/admin/quarantine/{hash_ref}/confirm", "admin", 200, _hash("q2"), phase=2),
    Policy("POST", "/v1/admin/hashes/{hash_ref}/reset", "admin", 200, _hash("q2"), phase=2),
    # last: withdrawing C1 and C2 retires their flags
    Policy("DELETE", "/v1/cases/{case_id}", "victim", 204, _cases(), phase=2),
    # anyone
    Policy("GET", "/healthz", "public", 200, ANY),
    Policy("GET", "/readyz", "public", 200, ANY),
    Policy("GET", "/metrics", "public", 200, ANY),
    # routes outside the schema
    Policy("GET", "/openapi.json", "public", 200, ANY, inspect=False),
    Policy("HEAD", "/openapi.json", "public", 200, ANY, inspect=False),
    Policy("GET", "/docs", "public", 200, ANY, inspect=False),
    Policy("HEAD", "/docs", "public", 200, ANY, inspect=False),
    Policy("GET", "/docs/oauth2-redirect", "public", 200, ANY, inspect=False),
    Policy("HEAD", "/docs/oauth2-redirect", "public", 200, ANY, inspect=False),
    Policy("GET", "/redoc", "public", 200, ANY, inspect=False),
    Policy("HEAD", "/redoc", "public", 200, ANY, inspect=False),
    Policy("GET", "/", "public", 200, ANY, inspect=False),
    Policy("HEAD", "/", "public", 200, ANY, inspect=False),
    Policy("GET", "/assets/{name}", "public", 200, ASSET_TARGETS, inspect=False),
    Policy("HEAD", "/assets/{name}", "public", 200, ASSET_TARGETS, inspect=False),
)


# --- the rule: expected outcome of a cell ----------------------------------------------------


def authentication_outcome(audience: str, principal: str) -> int | None:
    """The status a principal gets on a route of ``audience`` before any object is looked at
    (None: it gets through)."""
    if audience == "public":
        return None
    if audience == "victim":
        return None if principal in VICTIMS else 401
    if principal in (ANON, C1, C2):
        return 401
    allowed = {"platform": PLATFORMS, "admin": (ADMIN,)}.get(audience, ())
    return None if principal in allowed else 403


def expected_status(policy: Policy, principal: str, target: Target) -> int:
    refused = authentication_outcome(policy.audience, principal)
    if refused is not None:
        return refused
    if target.owner == EVERYONE or target.owner == principal:
        return policy.success
    if target.owner == ADMIN and principal == ADMIN:
        return policy.success
    return 404


# --- routes of the app ------------------------------------------------------------------------


def _walk(routes: list[BaseRoute], prefix: str = "") -> Iterator[tuple[str, str, bool]]:
    """(method, path, in schema) of every route, through included routers."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            context = getattr(route, "include_context", None)
            extra = getattr(context, "prefix", "") if context is not None else ""
            yield from _walk(list(included.routes), prefix + extra)
            continue
        path = getattr(route, "path", None)
        methods = getattr(route, "methods", None)
        if path is None or not methods:
            continue
        in_schema = bool(getattr(route, "include_in_schema", True))
        for method in methods:
            yield method, prefix + path, in_schema


def app_routes(
    settings: Settings, redis_url: str
) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    """(operations of the OpenAPI schema, routes outside it)."""
    app: FastAPI = create_app(settings, redis_url)
    schema = app.openapi()
    in_schema = {
        (method.upper(), path)
        for path, operations in schema["paths"].items()
        for method in operations
    }
    walked = set(_walk(list(app.routes)))
    assert {(m, p) for m, p, s in walked if s} == in_schema, "route walk disagrees with the schema"
    return in_schema, {(m, p) for m, p, s in walked if not s}


def json_body_operations(settings: Settings, redis_url: str) -> set[tuple[str, str]]:
    schema = create_app(settings, redis_url).openapi()
    return {
        (method.upper(), path)
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
        if "application/json" in operation.get("requestBody", {}).get("content", {})
    }


def test_policy_covers_every_route(settings: Settings, redis_url: str) -> None:
    in_schema, outside = app_routes(settings, redis_url)
    table = {(p.method, p.path) for p in POLICY}
    assert len(table) == len(POLICY), "duplicate policy entries"
    assert in_schema - table == set(), f"routes in the schema without a policy: {in_schema - table}"
    assert outside - table == set(), (
        f"routes outside the schema without a policy: {outside - table}"
    )
    assert table - in_schema - outside == set(), (
        f"policy for no route: {table - in_schema - outside}"
    )
    json_routes = json_body_operations(settings, redis_url)
    without_body = {(p.method, p.path) for p in POLICY if p.json_body is None} & json_routes
    assert without_body == set(), f"JSON-body routes without a body in the policy: {without_body}"


# --- leak detectors ---------------------------------------------------------------------------

_TOKEN = re.compile(r"hsk_(?:platform|admin|case|whsec)_[A-Za-z0-9_-]{43}")
_PLATFORM_FORBIDDEN_KEYS = re.compile(r"^(case_id|secret.*|.*_secret|victim.*)$")
_VICTIM_FORBIDDEN_KEYS = frozenset(
    {
        "file",
        "filename",
        "file_name",
        "media",
        "image",
        "data",
        "uri",
        "url",
        "source",
        "uploader",
        "uploader_id",
        "platform_id",
        "job_id",
        "flag_id",
        "key_id",
        "api_key",
        "webhook_url",
        "file_root",
    }
)


def _json_keys(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from _json_keys(item)
    elif isinstance(value, list):
        for item in value:
            yield from _json_keys(item)


def leaks(world: World, principal: str, policy: Policy, response: httpx.Response) -> list[str]:
    """What this principal's response shows that its audience must never see."""
    text = response.content.decode("utf-8", errors="replace")
    found: list[str] = []
    body: Any = None
    if response.headers.get("content-type", "").startswith("application/json"):
        body = json.loads(text)
    elif policy.path.startswith("/v1/") and response.status_code != 204:
        found.append("a non-JSON body")
    keys = set(_json_keys(body))
    issued = set()
    if policy.issues and isinstance(body, dict) and policy.issues in body:
        issued = {str(body[policy.issues])}  # the caller's own new credential
        keys -= {policy.issues, "case_id"}
    tokens = set(_TOKEN.findall(text)) - issued - {world.tokens.get(principal, "")}
    if tokens and principal != ADMIN:
        found.append(f"credentials {sorted(t[:16] for t in tokens)}")
    if principal == ADMIN and tokens and response.status_code != 201:
        found.append("credentials outside a creation response")
    if principal in (ANON, *PLATFORMS, ADMIN):
        found += [f"stored hash {h}" for h in world.stored_hashes if h in text]
    if principal in (ANON, *PLATFORMS):
        found += [f"key {k!r}" for k in keys if _PLATFORM_FORBIDDEN_KEYS.match(k)]
        found += [f"case id of {c}" for c, case_id in world.cases.items() if case_id in text]
    if principal in PLATFORMS:
        found += _other_platform(world, principal, text)
    if principal in (ANON, *VICTIMS):
        found += _uploader_data(world, keys, text)
    if principal in VICTIMS:
        other_case = world.cases[C2 if principal == C1 else C1]
        if other_case in text:
            found.append("another case's id")
    return found


def _other_platform(world: World, principal: str, text: str) -> list[str]:
    other = P2 if principal == P1 else P1
    shown = (
        ("name", world.platform_names[other]),
        ("platform id", world.platform_ids[other]),
        ("job", world.jobs[other]),
        ("flag", world.flags[other]),
    )
    return [f"the other platform's {what}" for what, value in shown if value in text]


def _uploader_data(world: World, keys: set[str], text: str) -> list[str]:
    """Media, file names and uploader ids: what victims (and strangers) never see."""
    found = [f"key {k!r}" for k in keys if k in _VICTIM_FORBIDDEN_KEYS]
    found += [f"file name {n!r}" for n in world.upload_names if n in text]
    objects = [*world.platform_ids.values(), *world.jobs.values(), *world.flags.values()]
    found += [f"uploader object {o}" for o in objects if o in text]
    found += [f"media bytes ({m})" for m in ("/9j/", "data:image", "iVBOR") if m in text]
    return found


# --- the matrix -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    policy: Policy
    principal: str
    target: Target
    extra: tuple[str, str] | None = None  # (where, field): "top" or "item"

    @property
    def name(self) -> str:
        extra = f" +{self.extra[0]}.{self.extra[1]}" if self.extra else ""
        where = f"{self.policy.method} {self.policy.path} [{self.target.label}]"
        return f"{where} as {self.principal}{extra}"

    def expected(self) -> int:
        status = expected_status(self.policy, self.principal, self.target)
        if self.extra is None:
            return status
        # Bodies are validated after authentication, before any object is looked at.
        return status if status in (401, 403) else 422


def _signature(response: httpx.Response) -> tuple[int, bytes, list[tuple[str, str]]]:
    headers = sorted((k, v) for k, v in response.headers.items() if k not in VOLATILE_HEADERS)
    return response.status_code, response.content, headers


def send(client: httpx.Client, world: World, cell: Cell) -> httpx.Response:
    policy = cell.policy
    url = policy.path.format(**cell.target.params(world))
    headers = world.headers(cell.principal)
    if policy.json_body is None:
        return client.request(policy.method, url, headers=headers)
    if policy.upload and cell.extra is None:
        image = reupload("astronaut", "resize_half")
        return client.request(policy.method, url, headers=headers, files=upload(image, "m.jpg"))
    body = policy.json_body(world)
    if cell.extra is not None:
        where, name = cell.extra
        if where == "top":
            body = {**body, name: EXTRA_FIELDS[name]}
        else:
            assert policy.nested_items is not None
            items = [dict(i) for i in body[policy.nested_items]]
            items[0][name] = EXTRA_FIELDS[name]
            body = {**body, policy.nested_items: items}
    return client.request(policy.method, url, headers=headers, json=body)


def cells() -> Iterator[Cell]:
    for policy in POLICY:
        for target in policy.targets:
            for principal in PRINCIPALS:
                yield Cell(policy, principal, target)
                if policy.json_body is None:
                    continue
                for name in EXTRA_FIELDS:
                    yield Cell(policy, principal, target, ("top", name))
                    if policy.nested_items and name != "quality":  # quality is an item field
                        yield Cell(policy, principal, target, ("item", name))


def _phase(cell: Cell) -> int:
    """State-changing successes run last, in table order; everything else first."""
    succeeds = cell.extra is None and 200 <= cell.expected() < 300
    return 2 if cell.policy.phase == 2 and succeeds else 1


def run_cells(
    client: httpx.Client, world: World, ordered: list[Cell]
) -> tuple[dict[Cell, httpx.Response], list[str]]:
    """Send every cell; the violations of status, WWW-Authenticate and leaks."""
    violations: list[str] = []
    responses: dict[Cell, httpx.Response] = {}
    for cell in ordered:
        if _phase(cell) == 2 and not any(_phase(c) == 2 for c in responses):
            # Phase 1 named P2's key under P1's path (and the other way): both still work.
            for principal, (_, key) in world.spare_keys.items():
                if client.get("/v1/flags", headers=bearer(key)).status_code != 200:
                    violations.append(f"{principal}'s spare key refused before its revocation")
        response = send(client, world, cell)
        responses[cell] = response
        expected = cell.expected()
        if response.status_code != expected:
            violations.append(
                f"{cell.name}: {response.status_code} (expected {expected}) {response.text[:160]}"
            )
        if response.status_code == 401 and "www-authenticate" not in response.headers:
            violations.append(f"{cell.name}: 401 without WWW-Authenticate")
        if cell.policy.inspect:
            found = leaks(world, cell.principal, cell.policy, response)
            violations += [f"{cell.name}: shows {leak}" for leak in found]
    return responses, violations


def compare_not_found(responses: dict[Cell, httpx.Response]) -> tuple[int, list[str]]:
    """Every answer about another tenant's object (or a withdrawn case) must be the bytes of the
    answer about a nonexistent id, for the same principal and request: the 404s, and also the
    401s and 422s that come first. Operators are not tenants: admin routes are not compared."""
    reference = {
        (c.policy, c.principal, c.extra): r
        for c, r in responses.items()
        if c.target.label == "missing"
    }
    compared, violations = 0, []
    for cell, response in responses.items():
        foreign = cell.target.owner not in (EVERYONE, cell.principal)
        if cell.target.label == "missing" or cell.policy.audience == "admin" or not foreign:
            continue
        missing = reference[(cell.policy, cell.principal, cell.extra)]
        compared += 1
        if _signature(response) != _signature(missing):
            violations.append(
                f"{cell.name}: differs from the answer for a nonexistent id: "
                f"{response.text!r} vs {missing.text!r}"
            )
    return compared, violations


def check_phase_two(client: httpx.Client, world: World) -> list[str]:
    """Phase 2 really changed state: revoked spare keys are refused, P1 and P2 enabled again."""
    violations = []
    for principal, (_, key) in world.spare_keys.items():
        if client.get("/v1/flags", headers=bearer(key)).status_code != 401:
            violations.append(f"{principal}'s spare key still works after its 204 revocation")
    for principal in PLATFORMS:
        if client.get("/v1/flags", headers=world.headers(principal)).status_code != 200:
            violations.append(f"{principal} is not enabled again after disable + enable")
    for victim in VICTIMS:
        status = client.get(f"/v1/cases/{world.cases[victim]}", headers=world.headers(victim))
        if status.status_code != 404:
            violations.append(f"{victim} still opens after its 204 withdrawal")
    return violations


def test_authorization_matrix(client: httpx.Client, settings: Settings, redis_url: str) -> None:
    world = build_world(client, settings, redis_url)
    all_cells = list(cells())
    ordered = [c for c in all_cells if _phase(c) == 1] + [c for c in all_cells if _phase(c) == 2]
    responses, violations = run_cells(client, world, ordered)
    compared, different = compare_not_found(responses)
    violations += different + check_phase_two(client, world)
    with_extra = sum(1 for c in all_cells if c.extra)
    print(
        f"\nS1 matrix: {len(POLICY)} routes x {len(PRINCIPALS)} principals x their objects = "
        f"{len(all_cells)} cells ({with_extra} with extra JSON fields); "
        f"{compared} answers about foreign objects identical to a nonexistent id's; "
        f"{len(violations)} violations"
    )
    assert violations == [], "\n".join(violations[:60])
    assert len(responses) == len(all_cells)
    assert compared >= 12  # 8 case, 2 job and 2 flag cells


def test_leak_detectors_can_fail() -> None:
    """The detectors of the matrix see what they look for."""
    world = World(
        tokens={P1: "hsk_platform_" + "a" * 43, C1: "hsk_case_" + "b" * 43},
        platform_ids={P1: "p_1111111111111111", P2: "p_2222222222222222"},
        platform_names={P1: "AlphaVids", P2: "BetaPics"},
        spare_keys={},
        cases={C1: "case_" + "c" * 22, C2: "case_" + "d" * 22},
        jobs={P1: "j_one", P2: "j_two"},
        flags={P1: "f_one", P2: "f_two"},
        stored_hashes={"e" * 16},
        upload_names={"holiday.jpg"},
        near_c1=[],
        other_photo=[],
    )
    [scan] = [p for p in POLICY if p.path == "/v1/scan"]
    [status] = [p for p in POLICY if p.method == "GET" and p.path == "/v1/cases/{case_id}"]

    def shown(principal: str, policy: Policy, body: dict[str, Any]) -> list[str]:
        return leaks(world, principal, policy, httpx.Response(200, json=body))

    assert shown(P1, scan, {"matched": False, "matches": [], "hashes": []}) == []
    for body in (
        {"case_id": "x"},
        {"m": [{"secret_hash": "x"}]},
        {"hash": "e" * 16},
        {"platform": "BetaPics"},
        {"flag": "f_two"},
        {"k": "hsk_case_" + "b" * 43},
        {"case": world.cases[C2]},
    ):
        assert shown(P1, scan, body), body
    assert shown(C1, status, {"case_id": world.cases[C1], "matches": [{"platform": "x"}]}) == []
    for body in (
        {"file_name": "x"},
        {"m": "holiday.jpg"},
        {"platform_id": "x"},
        {"m": "p_2222222222222222"},
        {"thumb": "data:image/jpeg;base64,/9j/4AAQ"},
        {"other": world.cases[C2]},
    ):
        assert shown(C1, status, body), body
    assert leaks(world, P1, scan, httpx.Response(200, text="plain")) == ["a non-JSON body"]
