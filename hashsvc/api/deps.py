"""Request dependencies as ``Annotated`` aliases: the shared objects of the running app and the
authentication of platforms (API key) and victims (case secret). Written once, used by routes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from hashsvc.config import Settings
from hashsvc.errors import NotAuthorized
from hashsvc.matching import Matcher, ReplicaSet
from hashsvc.models import Platform
from hashsvc.security import verifier, verify
from hashsvc.store import Store


@dataclass
class AppState:
    """Everything the lifespan opens, reachable from ``request.app.state.hashsvc``."""

    settings: Settings
    store: Store
    replicas: ReplicaSet
    matcher: Matcher


def _state(request: Request) -> AppState:
    state: AppState = request.app.state.hashsvc
    return state


StateDep = Annotated[AppState, Depends(_state)]

_bearer = HTTPBearer(auto_error=False, description="Case secret or platform API key")
_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False)
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def bearer_token(credentials: BearerDep) -> str:
    """The bearer token; a missing one is a 401 (never read from the query string)."""
    if credentials is None or not credentials.credentials:
        raise NotAuthorized("missing credentials: send 'Authorization: Bearer <secret>'")
    return credentials.credentials


BearerTokenDep = Annotated[str, Depends(bearer_token)]


async def authenticated_platform(
    state: StateDep,
    credentials: BearerDep,
    api_key: Annotated[str | None, Depends(_api_key_header)],
) -> Platform:
    """The platform whose API key was presented (Bearer or X-API-Key)."""
    key = api_key or (credentials.credentials if credentials else None)
    if not key:
        raise NotAuthorized("missing API key: send 'Authorization: Bearer <api key>'")
    pepper = state.settings.token_pepper.get_secret_value()
    found = await state.store.platforms.by_key_verifier(verifier(key, pepper))
    if found is None or not verify(key, found[1], pepper):
        raise NotAuthorized("invalid API key")
    return found[0]


PlatformDep = Annotated[Platform, Depends(authenticated_platform)]
