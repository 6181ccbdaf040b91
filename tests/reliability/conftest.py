"""Fault-injection tests (../shared/reliability-tests.md). Quick forms run in `make test`;
`make chaos` runs the full forms with --full-chaos."""

from __future__ import annotations

import pytest

from tests.workers.conftest import settings, workers

__all__ = ["settings", "workers"]  # the worker-process fixtures, shared with tests/workers


@pytest.fixture
def full_chaos(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--full-chaos"))
