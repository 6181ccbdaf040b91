"""The shared objects of the running app, as a request dependency (authentication and quotas
are in ``hashsvc.api.auth``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from hashsvc.config import Settings
from hashsvc.matching import Matcher, ReplicaSet
from hashsvc.store import Store
from hashsvc.trust import Trust


@dataclass
class AppState:
    """Everything the lifespan opens, reachable from ``request.app.state.hashsvc``."""

    settings: Settings
    store: Store
    replicas: ReplicaSet
    matcher: Matcher
    trust: Trust


def _state(request: Request) -> AppState:
    state: AppState = request.app.state.hashsvc
    return state


StateDep = Annotated[AppState, Depends(_state)]
