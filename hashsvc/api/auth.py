"""Authentication, authorization and quotas, written once as dependencies.

Principals: platforms (``hsk_platform_`` keys with scopes), operators (``hsk_admin_`` keys,
scope admin) and victims (a case secret, ``hsk_case_``, opening one case). Credentials come
only from headers (``Authorization: Bearer`` or ``X-API-Key``); a credential-looking query
parameter is refused. Every process reads keys from Redis on every request, so a revoked key
or a disabled platform is refused everywhere at the next request.

Failed authentications are counted per client IP; past ``auth_failures_per_min`` the IP gets
429 before its credentials are even looked at (a throttled guesser learns nothing, while the
owner of a case, from another address, is never locked out).
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from redis.asyncio.client import Pipeline

from hashsvc import cases
from hashsvc.api.deps import StateDep
from hashsvc.api.requestid import current_request_id
from hashsvc.errors import CaseNotFound, Forbidden, NotAuthorized, RateLimited
from hashsvc.models import CaseRecord, Credential, Platform, Scope
from hashsvc.security import CASE_SECRET, TOKEN_PREFIX, token_kind, verifier
from hashsvc.store.ratelimit import Decision, Rate

_QUERY_CREDENTIALS = frozenset(
    {
        "api_key",
        "apikey",
        "x_api_key",
        "key",
        "token",
        "access_token",
        "secret",
        "auth",
        "authorization",
    }
)
_bearer = HTTPBearer(auto_error=False, description="API key or case secret")
_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="API key")
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
ApiKeyHeaderDep = Annotated[str | None, Depends(_api_key_header)]


def client_ip(request: Request) -> str:
    """The client address (uvicorn resolves X-Forwarded-For from trusted proxies only)."""
    return request.client.host if request.client else "unknown"


def _retry_after(seconds: float) -> int:
    return max(1, math.ceil(seconds))


def _failure_rate(state: StateDep) -> Rate:
    settings = state.settings
    return Rate(settings.auth_failures_per_min / 60, settings.auth_failure_burst)


def _refuse_if(decision: Decision) -> None:
    if not decision.allowed:
        raise RateLimited(
            "too many failed authentications from this address; retry later",
            _retry_after(decision.retry_after_s),
        )


async def _refuse_if_throttled(state: StateDep, ip: str) -> None:
    _refuse_if(await state.store.rate_limits.peek("auth_fail", ip, _failure_rate(state)))


async def _count_failure(state: StateDep, ip: str) -> None:
    await state.store.rate_limits.hit("auth_fail", ip, _failure_rate(state))


def _is_credential(name: str, value: str) -> bool:
    """A query parameter named like a credential (``api_key``, ``Api-Key``, ``token``, ...) or
    carrying one under any name (every issued credential starts with ``hsk_``)."""
    return name.lower().replace("-", "_") in _QUERY_CREDENTIALS or TOKEN_PREFIX in value


def _presented_token(
    request: Request, credentials: HTTPAuthorizationCredentials | None, api_key: str | None
) -> str:
    if any(_is_credential(name, value) for name, value in request.query_params.multi_items()):
        raise NotAuthorized(
            "credentials are never accepted in the query string; "
            "send 'Authorization: Bearer <credential>'"
        )
    token = api_key or (credentials.credentials if credentials else "")
    if not token:
        raise NotAuthorized("missing credentials: send 'Authorization: Bearer <credential>'")
    return token


@dataclass(frozen=True)
class Principal:
    """An authenticated key: its credential, and its platform for a platform key."""

    credential: Credential
    platform: Platform | None

    @property
    def actor(self) -> str:
        """How the audit log names this principal."""
        if self.platform is not None:
            return f"platform:{self.platform.platform_id}"
        return f"admin:{self.credential.key_id}"


async def _authenticate(
    request: Request,
    state: StateDep,
    credentials: HTTPAuthorizationCredentials | None,
    api_key: str | None,
    quota: Rate | None = None,
) -> tuple[Principal, Decision | None]:
    """The platform or operator whose API key was presented, in two round trips: the address's
    failure throttle with the key's credential, then the platform's record with, when
    ``quota`` is given and the key has the scan scope, a hit on the platform's scan quota.
    A throttled address is answered 429 whatever its key (the credential read alongside is
    not looked at)."""
    ip = client_ip(request)
    token = _presented_token(request, credentials, api_key)
    kind = token_kind(token)
    store, limiter = state.store, state.store.rate_limits
    # The lookup is keyed by an HMAC of the token: no comparison of secret bytes happens here.
    key = (
        verifier(token, state.settings.token_pepper.get_secret_value())
        if kind in ("platform", "admin")
        else None
    )

    def first(pipe: Pipeline) -> None:
        limiter.stage(pipe, "auth_fail", ip, _failure_rate(state), consume=False)
        if key is not None:
            store.credentials.stage_lookup(pipe, key)

    replies = await limiter.batch(first)
    _refuse_if(limiter.decision(replies[0]))
    if key is None:
        await _count_failure(state, ip)
        raise NotAuthorized("not an API key: expected 'hsk_platform_...' or 'hsk_admin_...'")
    credential = store.credentials.parse(replies[1])
    if credential is None or credential.kind != kind:
        await _count_failure(state, ip)
        raise NotAuthorized(_INVALID_KEY)
    if credential.kind != "platform":
        return Principal(credential, None), None
    owner = credential.owner
    charge = quota is not None and Scope.SCAN in credential.scopes

    def second(pipe: Pipeline) -> None:
        store.platforms.stage_get(pipe, owner)
        if charge and quota is not None:  # a disabled platform's refused key may spend one
            limiter.stage(pipe, "scan", owner, quota)

    replies = await limiter.batch(second)
    platform = store.platforms.parse(owner, replies[0])
    if platform is None or platform.disabled:
        await _count_failure(state, ip)
        raise NotAuthorized(_INVALID_KEY)
    return Principal(credential, platform), limiter.decision(replies[1]) if charge else None


_INVALID_KEY = "invalid API key (unknown, revoked, or its platform is disabled)"


async def authenticated_key(
    request: Request, state: StateDep, credentials: BearerDep, api_key: ApiKeyHeaderDep
) -> Principal:
    """The platform or operator whose API key was presented."""
    principal, _ = await _authenticate(request, state, credentials, api_key)
    return principal


PrincipalDep = Annotated[Principal, Depends(authenticated_key)]


def _require(scope: Scope) -> Callable[[Principal], Awaitable[Principal]]:
    async def check(principal: PrincipalDep) -> Principal:
        if scope not in principal.credential.scopes:
            raise Forbidden(f"this key does not have the {scope.value!r} scope")
        return principal

    return check


async def _scanning_platform(
    request: Request, state: StateDep, credentials: BearerDep, api_key: ApiKeyHeaderDep
) -> Platform:
    """A platform key with the scan scope, within its platform's scan quota (taken in the
    same round trip as the platform's record)."""
    settings = state.settings
    quota = Rate(settings.scan_rate_per_s, settings.scan_burst)
    principal, decision = await _authenticate(request, state, credentials, api_key, quota)
    if Scope.SCAN not in principal.credential.scopes:
        raise Forbidden(f"this key does not have the {Scope.SCAN.value!r} scope")
    assert principal.platform is not None  # only platform keys carry the scan scope
    assert decision is not None
    if not decision.allowed:
        raise RateLimited(
            "scan quota of this platform exceeded; retry later",
            _retry_after(decision.retry_after_s),
        )
    return principal.platform


async def _platform_with(principal: Principal) -> Platform:
    assert principal.platform is not None
    return principal.platform


async def _job_reader(principal: Annotated[Principal, Depends(_require(Scope.SCAN))]) -> Platform:
    return await _platform_with(principal)


async def _reviewer(principal: Annotated[Principal, Depends(_require(Scope.REVIEW))]) -> Platform:
    return await _platform_with(principal)


async def _feed_reader(principal: Annotated[Principal, Depends(_require(Scope.FEED))]) -> Platform:
    return await _platform_with(principal)


ScanningPlatformDep = Annotated[Platform, Depends(_scanning_platform)]
"""Scans and job uploads: scope scan, counted against the platform's scan quota."""
JobReaderDep = Annotated[Platform, Depends(_job_reader)]
"""Reading the platform's own jobs: scope scan, no quota."""
ReviewerDep = Annotated[Platform, Depends(_reviewer)]
"""The platform's own flags: scope review."""
FeedReaderDep = Annotated[Platform, Depends(_feed_reader)]
"""The partner hash feed and bank snapshot: scope feed."""
AdminDep = Annotated[Principal, Depends(_require(Scope.ADMIN))]


async def authorized_case(
    case_id: str, request: Request, state: StateDep, credentials: BearerDep
) -> CaseRecord:
    """The case the presented secret opens. An unknown id, a wrong secret and a withdrawn case
    fail with identical bytes and timing (``CaseNotFound``)."""
    ip = client_ip(request)
    token = _presented_token(request, credentials, None)
    await _refuse_if_throttled(state, ip)
    if token_kind(token) != CASE_SECRET:
        await _count_failure(state, ip)
        raise NotAuthorized("not a case secret: expected 'hsk_case_...'")
    try:
        return await cases.authorize(case_id, token, state.settings, state.store)
    except CaseNotFound:
        await _count_failure(state, ip)
        raise


CaseDep = Annotated[CaseRecord, Depends(authorized_case)]


async def _case_creation_quota(request: Request, state: StateDep) -> None:
    settings = state.settings
    rate = Rate(settings.case_create_per_min / 60, settings.case_create_burst)
    decision = await state.store.rate_limits.hit("case_create", client_ip(request), rate)
    if not decision.allowed:
        raise RateLimited(
            "too many cases created from this address; retry later",
            _retry_after(decision.retry_after_s),
        )


CaseCreationQuota = Depends(_case_creation_quota)


async def audit(state: StateDep, actor: str, action: str, object_id: str) -> None:
    """Record a state change in the audit log, under the current request id."""
    await state.store.audit.record(actor, action, object_id, current_request_id())
