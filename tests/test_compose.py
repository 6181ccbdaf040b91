"""docker-compose.yml is valid for Compose and wires what the design needs (Redis with AOF and
a volume, health checks, API and scalable workers). .ci/run installs Debian's docker-compose."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]


def compose_config() -> dict[str, Any]:
    tool = shutil.which("docker-compose")
    assert tool, "docker-compose is required (.ci/run installs it)"
    result = subprocess.run(
        [tool, "config"], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = yaml.safe_load(result.stdout)
    return config


def test_compose_file_is_valid_and_complete() -> None:
    services = compose_config()["services"]
    assert set(services) == {"redis", "api", "worker"}
    redis_command = " ".join(services["redis"]["command"])
    assert "--appendonly yes" in redis_command
    assert services["redis"]["volumes"]
    for name in ("redis", "api"):
        assert services[name]["healthcheck"]["test"]
    for name in ("api", "worker"):
        assert services[name]["environment"]["REDIS_URL"].startswith("redis://redis:")
        assert services[name]["depends_on"]["redis"]["condition"] == "service_healthy"
    assert services["worker"]["deploy"]["replicas"] >= 2
