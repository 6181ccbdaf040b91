"""Fault-injection tests (../shared/reliability-tests.md). Quick forms run in `make test`;
`make chaos` runs the full forms with --full-chaos."""

from __future__ import annotations

import pytest

from tests.workers.conftest import settings

__all__ = ["settings"]  # the worker-tuned settings of tests/workers (workers: tests/conftest.py)


@pytest.fixture
def full_chaos(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--full-chaos"))
