"""The real service as users run it: `hashsvc serve` in its own process with the embedded Redis,
restarted on the same data directory; and the CLI against it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from fixtures.make_variants import load_photo
from hashsvc.signals.crops import victim_crop_hashes
from tests.helpers import PHOTOS, bearer, reupload, upload
from tests.procfs import free_port


def cli_env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HASHSVC_") and k != "REDIS_URL"}
    env["HASHSVC_DATA_DIR"] = str(data_dir)
    return env


def hashsvc(*args: str, data_dir: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hashsvc", *args],
        env=cli_env(data_dir),
        capture_output=True,
        text=True,
        timeout=120,
        check=check,
        stdin=subprocess.DEVNULL,
    )


class Service:
    """`hashsvc serve` as a child process."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "hashsvc", "serve", "--port", str(self.port)],
            env=cli_env(self.data_dir),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    self.process.stderr.read().decode() if self.process.stderr else ""
                )
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError("hashsvc serve did not become healthy")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(30)
        if self.process and self.process.stderr:
            self.process.stderr.close()


def redis_answers(sock: Path) -> bool:
    try:
        with redis.Redis(unix_socket_path=str(sock), socket_connect_timeout=1) as r:
            return bool(r.ping())
    except redis.ConnectionError:
        return False


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Service]:
    service = Service(tmp_path / "var")
    yield service
    service.stop()


def test_restart_on_the_same_data_dir_keeps_cases(served: Service, tmp_path: Path) -> None:
    served.start()
    sock = served.data_dir / "redis.sock"
    with redis.Redis(unix_socket_path=str(sock)) as r:
        assert r.config_get("appendonly") == {"appendonly": "yes"}
    created = hashsvc("platform", "create", "ExampleTube", data_dir=served.data_dir).stdout
    api_key = created.split("api key:")[1].split()[0]
    submitted = hashsvc(
        "submit", str(PHOTOS["coffee"]), "--server", served.url, data_dir=served.data_dir
    ).stdout
    case_id = submitted.split("case id:")[1].split()[0]
    secret = submitted.split("secret:")[1].split()[0]
    image = reupload("coffee", "resize_half")

    served.stop()
    assert not redis_answers(sock), "stopping the service must stop its embedded Redis"
    served.start()

    status = httpx.get(f"{served.url}/v1/cases/{case_id}", headers=bearer(secret))
    assert status.status_code == 200
    crops = len(victim_crop_hashes(load_photo(PHOTOS["coffee"])))  # the CLI sends them too
    assert crops > 0
    assert status.json()["hashes"] == {"pdq": 1 + crops, "phash": 1}
    scan = httpx.post(f"{served.url}/v1/scan", files=upload(image), headers=bearer(api_key))
    assert scan.json()["matched"] is True


def test_killed_service_leaves_no_orphan_redis(served: Service) -> None:
    served.start()
    sock = served.data_dir / "redis.sock"
    assert served.process is not None
    served.process.kill()
    served.process.wait()
    deadline = time.monotonic() + 10
    while redis_answers(sock) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not redis_answers(sock)


def test_cli_hash_equals_what_the_api_computes(served: Service) -> None:
    served.start()
    api_key = (
        hashsvc("platform", "create", "P", data_dir=served.data_dir)
        .stdout.split("api key:")[1]
        .split()[0]
    )
    for path in PHOTOS.values():
        local = json.loads(hashsvc("hash", "--json", str(path), data_dir=served.data_dir).stdout)
        scan = httpx.post(
            f"{served.url}/v1/scan",
            files=upload(path.read_bytes(), path.name),
            headers=bearer(api_key),
            timeout=30,
        ).json()
        assert local["hashes"] == scan["hashes"], path.name
        crops = [
            {"signal": "pdq", "hash": h.code.hex(), "quality": h.quality, "variant": h.variant}
            for h in victim_crop_hashes(load_photo(path))
        ]
        assert local["crops"] == crops, path.name


def test_cli_victim_journey(served: Service, tmp_path: Path) -> None:
    served.start()
    api_key = (
        hashsvc("platform", "create", "P", data_dir=served.data_dir)
        .stdout.split("api key:")[1]
        .split()[0]
    )
    out = hashsvc(
        "submit", str(PHOTOS["rocket"]), "--server", served.url, data_dir=served.data_dir
    ).stdout
    case_id, secret = out.split("case id:")[1].split()[0], out.split("secret:")[1].split()[0]
    upload_path = tmp_path / "reupload.jpg"
    upload_path.write_bytes(reupload("rocket"))
    scan = hashsvc(
        "scan",
        str(upload_path),
        "--api-key",
        api_key,
        "--server",
        served.url,
        data_dir=served.data_dir,
    )
    assert json.loads(scan.stdout)["matched"] is True
    status = hashsvc(
        "status", case_id, "--secret", secret, "--server", served.url, data_dir=served.data_dir
    )
    assert len(json.loads(status.stdout)["matches"]) == 1
    hashsvc(
        "withdraw", case_id, "--secret", secret, "--server", served.url, data_dir=served.data_dir
    )
    again = hashsvc(
        "status",
        case_id,
        "--secret",
        secret,
        "--server",
        served.url,
        data_dir=served.data_dir,
        check=False,
    )
    assert again.returncode == 1
    assert "404" in again.stderr
    assert "no case" in again.stderr


def test_cli_errors_are_clear(tmp_path: Path) -> None:
    text = tmp_path / "notes.jpg"
    text.write_text("not an image")
    result = hashsvc("hash", str(text), data_dir=tmp_path, check=False)
    assert result.returncode == 2
    assert "error:" in result.stderr
    assert "Traceback" not in result.stderr
    unreachable = hashsvc(
        "submit",
        str(PHOTOS["coffee"]),
        "--server",
        f"http://127.0.0.1:{free_port()}",
        data_dir=tmp_path,
        check=False,
    )
    assert unreachable.returncode == 1
    assert "cannot reach the server" in unreachable.stderr


def test_operator_keys_from_the_cli(served: Service) -> None:
    """`hashsvc admin create-key` issues a key the admin API accepts; `admin revoke-key`
    and `platform disable` take effect on the running service at the next request."""
    served.start()
    issued = hashsvc("admin", "create-key", "ops", data_dir=served.data_dir).stdout
    admin_key = issued.split("admin key:")[1].split()[0]
    key_id = issued.split("key id:")[1].split()[0]
    listing = httpx.get(f"{served.url}/v1/admin/platforms", headers=bearer(admin_key))
    assert listing.status_code == 200
    created = hashsvc("platform", "create", "ExampleTube", data_dir=served.data_dir).stdout
    platform_id = created.split("platform id:")[1].split()[0]
    api_key = created.split("api key:")[1].split()[0]
    flags = httpx.get(f"{served.url}/v1/flags", headers=bearer(api_key))
    assert flags.status_code == 200

    hashsvc("platform", "disable", platform_id, data_dir=served.data_dir)
    assert httpx.get(f"{served.url}/v1/flags", headers=bearer(api_key)).status_code == 401
    hashsvc("admin", "revoke-key", key_id, data_dir=served.data_dir)
    denied = httpx.get(f"{served.url}/v1/admin/platforms", headers=bearer(admin_key))
    assert denied.status_code == 401
    again = hashsvc("admin", "revoke-key", key_id, data_dir=served.data_dir, check=False)
    assert again.returncode != 0
    assert "no operator key" in again.stderr
