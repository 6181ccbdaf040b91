"""Schemathesis hooks for B6 (``test_b6_schemathesis.py``), loaded by ``st run`` through
``SCHEMATHESIS_HOOKS=tests.security.b6_hooks``. The test passes the served app's URL, real
credentials and real objects (made on the same Redis) in ``HASHSVC_B6_*`` variables.

Credentials (auth providers):

* ``/v1/admin/...``: the operator key;
* ``/v1/cases/{case_id}``: the secret of that case. The test's cases and every case created
  here or by Schemathesis (``POST /v1/cases``, whose stateful links pass the new id on) have
  their secrets recorded; an unknown id gets a well-formed secret of another case, so the
  server must answer 404 as for a wrong secret;
* every other secured route: a platform key with every scope.

Path parameters: in the unit phases, real ids from ``schemathesis.toml`` (written by the test);
in the stateful phase, the ids the links carry from the responses that created the objects.
A stateful chain may disable the scanning platform or revoke its key (the platform list links
to both): ``after_call`` re-enables it, or issues a new key, so later requests still get in.

One narrow exclusion (``filter_failure``): ``positive_data_acceptance`` expects every request
that matches the schema to be accepted, but five documented refusals depend on things JSON
Schema cannot say, and are excused by operation and error, nothing else:

* ``POST /v1/cases`` refused with ``low_information_hash``: the low-information gate (quality
  under ``HASHSVC_PDQ_MIN_QUALITY``, a number of set bits no photograph gives, a hash near
  that of a flat, gradient or two-tone image), which keeps flat pictures from matching
  everything. The schema says everything else (signals, hex lengths, quality required);
* ``POST /v1/cases`` refused with ``invalid_hash`` "duplicate of": a hash given twice in one
  case; ``uniqueItems`` cannot say it (the same signal and hex in another letter case, or with
  another quality, is the same hash);
* ``POST /v1/admin/platforms`` refused with ``webhook_url_refused``: the SSRF guard decides on
  the addresses a host name resolves to (``hashsvc.egress``);
* ``POST /v1/scan`` refused with ``media_rejected``: an upload must decode as an image of an
  allowed format within the size and pixel limits (``hashsvc.media``); ``format: binary``
  says nothing of the bytes;
* ``POST /v1/admin/allowlist`` refused with ``media_rejected`` or ``low_information_hash``
  (an upload that is no picture, or a flat one); ``POST /v1/cases`` with
  ``hash_not_accepted`` (a hash allow-listed by an earlier request of the run);
* ``POST /v1/scan/jobs`` with a ``{"uri": ...}`` body refused with ``uri_not_allowed`` (no
  file root configured, the URI outside it, not a regular file): which files a platform may
  name is host configuration, set with the CLI.
"""

from __future__ import annotations

import json
import os
import threading
from typing import Any

import httpx
import schemathesis
from schemathesis import AuthContext, Case, HookContext, Response
from schemathesis.core.failures import Failure
from schemathesis.openapi.checks import RejectedPositiveData

_URL = os.environ.get("HASHSVC_B6_URL", "")
_PLATFORM_KEY = os.environ.get("HASHSVC_B6_PLATFORM_KEY", "")
_ADMIN_KEY = os.environ.get("HASHSVC_B6_ADMIN_KEY", "")
_OBJECTS: dict[str, Any] = json.loads(os.environ.get("HASHSVC_B6_OBJECTS", "{}"))

AnyCase = Case[Any]
_lock = threading.Lock()
_case_secrets: dict[str, str] = dict(_OBJECTS.get("case_secrets", {}))
_FALLBACK_SECRET = next(iter(_case_secrets.values()), "")


def _bearer(case: AnyCase, token: str) -> None:
    case.headers["Authorization"] = f"Bearer {token}"


@schemathesis.auth(refresh_interval=None, retry_on=[]).apply_to(path_regex=r"^/v1/admin/")
class AdminKey:
    def get(self, case: AnyCase, context: AuthContext) -> str:
        return _ADMIN_KEY

    def set(self, case: AnyCase, data: str, context: AuthContext) -> None:
        _bearer(case, data)


@schemathesis.auth(refresh_interval=None, retry_on=[]).apply_to(path="/v1/cases/{case_id}")
class CaseSecret:
    def get(self, case: AnyCase, context: AuthContext) -> str:
        return _secret_for(str((case.path_parameters or {}).get("case_id", "")))

    def set(self, case: AnyCase, data: str, context: AuthContext) -> None:
        _bearer(case, data)


@schemathesis.auth(refresh_interval=None, retry_on=[]).apply_to(
    path_regex=r"^/v1/(scan|flags|hashes)(/|$)"
)
class PlatformKey:
    def get(self, case: AnyCase, context: AuthContext) -> str:
        with _lock:
            return _PLATFORM_KEY

    def set(self, case: AnyCase, data: str, context: AuthContext) -> None:
        _bearer(case, data)


def _secret_for(case_id: str) -> str:
    with _lock:
        return _case_secrets.get(case_id, _FALLBACK_SECRET)


def _remember(created: dict[str, Any]) -> None:
    with _lock:
        _case_secrets[str(created["case_id"])] = str(created["secret"])


def _admin(method: str, path: str, **kwargs: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {_ADMIN_KEY}"}
    return httpx.request(method, f"{_URL}/v1/admin{path}", headers=headers, timeout=10, **kwargs)


def _repair(case: AnyCase, response: Response) -> None:
    """Undo what a stateful chain did to the scanning platform (its id is in the platform list,
    whose links lead to disable and revoke): re-enable it, or issue it a new key."""
    global _PLATFORM_KEY
    if (case.path_parameters or {}).get("platform_id") != _OBJECTS["scanner_id"]:
        return
    if case.operation.label.endswith("/disable") and response.status_code == 200:
        _admin("POST", f"/platforms/{_OBJECTS['scanner_id']}/enable").raise_for_status()
    if case.operation.method.upper() == "DELETE" and response.status_code == 204:
        issued = _admin(
            "POST",
            f"/platforms/{_OBJECTS['scanner_id']}/keys",
            json={"scopes": ["scan", "review", "feed"]},
        )
        issued.raise_for_status()
        with _lock:
            _PLATFORM_KEY = str(issued.json()["api_key"])


@schemathesis.hook
def before_call(context: HookContext, case: AnyCase, kwargs: dict[str, Any]) -> None:
    """Auth is set when a case is generated, before a stateful link puts the created case's
    id in the path: re-pick the secret for the id actually sent. Only a secret handed out here
    is replaced (checks that remove or forge credentials are left alone)."""
    if case.operation.path != "/v1/cases/{case_id}" or not case.headers:
        return
    with _lock:
        known = {f"Bearer {secret}" for secret in _case_secrets.values()}
    secret = _secret_for(str((case.path_parameters or {}).get("case_id", "")))
    for name, value in list(case.headers.items()):
        if name.lower() == "authorization" and value in known:
            case.headers[name] = f"Bearer {secret}"


@schemathesis.hook
def after_call(context: HookContext, case: AnyCase, response: Response) -> None:
    """Remember the secret of every case Schemathesis creates, for its links to GET/DELETE."""
    if case.operation.label == "POST /v1/cases" and response.status_code == 201:
        _remember(response.json())
    if case.operation.path.startswith("/v1/admin/platforms/{platform_id}"):
        _repair(case, response)


_SEMANTIC_REFUSALS = {
    "POST /v1/cases": "low_information_hash",
    "POST /v1/admin/platforms": "webhook_url_refused",
    "POST /v1/scan/jobs": "uri_not_allowed",
    "POST /v1/scan": "media_rejected",
    "POST /v1/admin/allowlist": "media_rejected",  # bytes that are no picture to hash
    "GET /v1/hashes/feed": "cursor_expired",  # a well-formed cursor the feed does not hold
    "GET /v1/hashes/snapshot": "bad_request",  # a page token the server did not issue
}


def _excused(operation: str, error: dict[str, Any]) -> bool:
    duplicate = error.get("code") == "invalid_hash" and "duplicate of" in str(error.get("message"))
    if operation == "POST /v1/cases" and duplicate:
        return True
    if operation == "POST /v1/admin/allowlist" and error.get("code") == "low_information_hash":
        return True  # a flat picture: the allow-list takes no hash that matches nothing
    if operation == "POST /v1/cases" and error.get("code") == "hash_not_accepted":
        return True  # a hash the fuzzer allow-listed earlier (POST /v1/admin/allowlist)
    return error.get("code") == _SEMANTIC_REFUSALS.get(operation)


@schemathesis.hook
def filter_failure(
    context: HookContext, failure: Failure, case: AnyCase, response: Response
) -> bool:
    """Keep every failure but the documented semantic refusals of schema-valid data."""
    if not isinstance(failure, RejectedPositiveData):
        return True
    try:
        body: Any = response.json()
    except ValueError:
        return True
    error = body.get("error") if isinstance(body, dict) else None
    return not (isinstance(error, dict) and _excused(case.operation.label, error))
