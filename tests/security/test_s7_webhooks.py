"""S7: webhook SSRF guard and signatures, against real local HTTP(S) receivers.

In production mode, URLs aimed at loopback, link-local, private and other non-public addresses
are refused at registration and again at delivery, and no request reaches the receiver; the same
URLs do reach it in development mode (the control that shows the receivers are live). Names are
resolved by a fake resolver where the test needs a "public" name: the machine has no internet,
and a name nobody can resolve that still reaches the receiver proves the connection goes to
the vetted address. The reference verifier accepts genuine signatures only, within 300 s.
"""

from __future__ import annotations

import asyncio
import http.server
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from hashsvc import webhooks
from hashsvc.config import Settings
from hashsvc.egress import DestinationRefused, EgressPolicy, Resolver, check_registration
from hashsvc.egress import system_resolver as real_dns
from hashsvc.platforms import NewPlatform, register_platform
from hashsvc.store import Store
from hashsvc.webhooks import SIGNATURE_HEADER, sign, verify_signature
from tests.helpers import bearer, reupload, upload
from tests.workers.conftest import wait_finished, wait_for

PUBLIC_NAME = "hooks.example.net"  # never resolved by the system: only through fake_dns


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A real HTTP(S) server in a thread that records every request it gets."""

    host: str = "127.0.0.1"
    status: int = 204
    location: str | None = None
    tls: ssl.SSLContext | None = None
    requests: list[Received] = field(default_factory=list)

    def __post_init__(self) -> None:
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                headers = {k.lower(): v for k, v in self.headers.items()}
                receiver.requests.append(Received(self.path, headers, body))
                self.send_response(receiver.status)
                if receiver.location:
                    self.send_header("Location", receiver.location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(http.server.ThreadingHTTPServer):
            address_family = socket.AF_INET6 if ":" in self.host else socket.AF_INET

        self.server = Server((self.host, 0), Handler)
        if self.tls is not None:
            self.server.socket = self.tls.wrap_socket(self.server.socket, server_side=True)
        self.port: int = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, host: str | None = None, scheme: str = "http") -> str:
        host = host or (f"[{self.host}]" if ":" in self.host else self.host)
        return f"{scheme}://{host}:{self.port}/hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receivers() -> Iterator[Callable[..., Receiver]]:
    started: list[Receiver] = []

    def start(**options: Any) -> Receiver:
        started.append(Receiver(**options))
        return started[-1]

    yield start
    for receiver in started:
        receiver.close()


@pytest.fixture
def receiver(receivers: Callable[..., Receiver]) -> Receiver:
    return receivers()


@pytest.fixture
def production(settings: Settings) -> Settings:
    return settings.model_copy(update={"production": True})


def fake_dns(table: dict[str, list[str]], calls: list[str] | None = None) -> Resolver:
    async def resolve(host: str, port: int) -> list[str]:
        if calls is not None:
            calls.append(host)
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return table[host]

    return resolve


def register(settings: Settings, redis_url: str, url: str) -> NewPlatform:
    async def create() -> NewPlatform:
        store = Store.open(redis_url)
        try:
            return await register_platform("Hooked", settings, store, webhook_url=url)
        finally:
            await store.close()

    return asyncio.run(create())


def send(
    url: str,
    policy: EgressPolicy,
    resolver: Resolver = real_dns,
    verify: ssl.SSLContext | bool = True,
    attempts: int = 1,
) -> bool:
    return asyncio.run(
        webhooks.deliver(
            url,
            "s3cret",
            b'{"job_id": "j1", "status": "done"}',
            timeout_s=3.0,
            attempts=attempts,
            policy=policy,
            resolver=resolver,
            verify=verify,
        )
    )


def loopback_urls(receiver: Receiver, receiver6: Receiver) -> list[str]:
    """Live URLs of the receivers, each through another route to this machine."""
    return [
        receiver.url(),
        receiver6.url(),  # [::1]
        receiver.url("localhost"),
        receiver.url(socket.gethostname()),  # /etc/hosts: a plain name resolving to loopback
        receiver.url("0.0.0.0"),  # connects to this host on Linux
        receiver.url("[::ffff:127.0.0.1]"),
    ]


# --- registration ----------------------------------------------------------------------------


def test_forbidden_urls_are_refused_at_registration_and_nothing_is_sent(
    production: Settings, redis_url: str, receivers: Callable[..., Receiver]
) -> None:
    receiver, receiver6 = receivers(), receivers(host="::1")
    hostname = socket.gethostname()
    assert str(socket.getaddrinfo(hostname, None)[0][4][0]).startswith(
        ("127.", "::1", "10.", "172.")
    )
    refused = [
        *loopback_urls(receiver, receiver6),
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "http://10.0.0.1/hook",
        "http://192.168.1.1/hook",
        "http://100.64.0.1/hook",
        f"http://user@127.0.0.1:{receiver.port}/hook",
        "http://user@93.184.215.14/hook",
        f"ftp://127.0.0.1:{receiver.port}/hook",
        f"http://2130706433:{receiver.port}/hook",  # 127.0.0.1 as one decimal number
        f"http://0x7f.1:{receiver.port}/hook",
    ]
    for url in refused:
        with pytest.raises(DestinationRefused) as caught:
            register(production, redis_url, url)
        assert caught.value.status == 400
        assert caught.value.code == "webhook_url_refused"
        assert "webhook" in caught.value.message, caught.value.message
    with redis.Redis.from_url(redis_url) as client:
        assert client.dbsize() == 0  # no platform was stored
    assert receiver.requests == receiver6.requests == []


def test_refusal_messages_say_why(production: Settings, redis_url: str) -> None:
    expected = {
        "http://169.254.169.254/": "link-local (169.254.169.254)",
        "http://10.0.0.1/": "private (10.0.0.1)",
        "http://[::1]/": "loopback (::1)",
        "http://localhost/": "a localhost name",
        "http://[::ffff:127.0.0.1]/": "loopback (IPv4 embedded in IPv6)",
        "http://0.0.0.0/": "unspecified",
        "ftp://93.184.215.14/": "must be http:// or https://",
        "http://user@93.184.215.14/": "must not carry credentials",
        "http://2130706433/": "non-canonical IP address",
    }
    for url, reason in expected.items():
        with pytest.raises(
            DestinationRefused, match=reason.replace("(", r"\(").replace(")", r"\)")
        ):
            register(production, redis_url, url)


def test_a_public_looking_name_resolving_to_loopback_is_refused(
    production: Settings, receiver: Receiver
) -> None:
    url = receiver.url(PUBLIC_NAME)
    mixed = fake_dns({PUBLIC_NAME: ["93.184.215.14", "127.0.0.1"]})  # every address counts
    with pytest.raises(DestinationRefused, match=r"loopback \(127.0.0.1\)"):
        asyncio.run(check_registration(url, production, mixed))
    assert not send(url, EgressPolicy.of(production), fake_dns({PUBLIC_NAME: ["127.0.0.1"]}))
    assert receiver.requests == []


def test_production_refuses_an_unresolvable_host_development_accepts_it(
    production: Settings, settings: Settings
) -> None:
    dns = fake_dns({})
    with pytest.raises(DestinationRefused, match="does not resolve"):
        asyncio.run(check_registration("https://nowhere.example/hook", production, dns))
    asyncio.run(check_registration("https://nowhere.example/hook", settings, dns))


# --- delivery --------------------------------------------------------------------------------


def test_development_mode_reaches_the_same_urls(
    settings: Settings, receivers: Callable[..., Receiver]
) -> None:
    """The control: every loopback route of the first test is live."""
    receiver, receiver6 = receivers(), receivers(host="::1")
    urls = loopback_urls(receiver, receiver6)
    for url in urls:
        assert send(url, EgressPolicy.of(settings)), url
    assert len(receiver.requests) + len(receiver6.requests) == len(urls)


def test_delivery_refuses_a_stored_url_that_is_forbidden_now(
    settings: Settings,
    production: Settings,
    redis_url: str,
    receivers: Callable[..., Receiver],
) -> None:
    """Registered in development mode (stored), delivered by a production-mode worker."""
    receiver, receiver6 = receivers(), receivers(host="::1")
    for url in loopback_urls(receiver, receiver6):
        assert register(settings, redis_url, url).webhook_secret
        assert not send(url, EgressPolicy.of(production), attempts=3)
    assert receiver.requests == receiver6.requests == []


def test_dns_rebinding_after_registration_is_caught_at_delivery(
    production: Settings, receiver: Receiver
) -> None:
    url = receiver.url(PUBLIC_NAME)
    asyncio.run(check_registration(url, production, fake_dns({PUBLIC_NAME: ["93.184.215.14"]})))
    rebound = fake_dns({PUBLIC_NAME: ["127.0.0.1"]})
    assert not send(url, EgressPolicy.of(production), rebound)
    assert receiver.requests == []


def test_delivery_connects_to_the_vetted_address_with_the_original_host(
    production: Settings, receiver: Receiver
) -> None:
    """The system cannot resolve PUBLIC_NAME here: the request arriving shows the client used
    the address the guard resolved and checked (once), not a second lookup of its own."""
    calls: list[str] = []
    dns = fake_dns({PUBLIC_NAME: ["127.0.0.1"]}, calls)
    policy = EgressPolicy(True, frozenset({f"{PUBLIC_NAME}:{receiver.port}"}))
    assert send(receiver.url(PUBLIC_NAME), policy, dns)
    assert calls == [PUBLIC_NAME]
    [request] = receiver.requests
    assert request.headers["host"] == f"{PUBLIC_NAME}:{receiver.port}"
    assert request.path == "/hook"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for PUBLIC_NAME (and nothing else)."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    command = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
    command += ["-keyout", str(key), "-out", str(cert), "-subj", f"/CN={PUBLIC_NAME}"]
    command += ["-addext", f"subjectAltName=DNS:{PUBLIC_NAME}"]
    subprocess.run(command, check=True, capture_output=True)
    return cert, key


def test_https_keeps_the_name_for_sni_and_certificate_checks(
    receivers: Callable[..., Receiver], certificate: tuple[Path, Path]
) -> None:
    cert, key = certificate
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(cert, key)
    names: list[str | None] = []
    server_tls.sni_callback = lambda sock, name, ctx: names.append(name)
    receiver = receivers(tls=server_tls)
    trust = ssl.create_default_context(cafile=str(cert))
    dns = fake_dns({PUBLIC_NAME: ["127.0.0.1"], "other.example.net": ["127.0.0.1"]})
    allowed = EgressPolicy(True, frozenset({PUBLIC_NAME, "other.example.net"}))

    assert send(receiver.url(PUBLIC_NAME, "https"), allowed, dns, verify=trust)
    assert names == [PUBLIC_NAME]
    assert receiver.requests[0].headers["host"] == f"{PUBLIC_NAME}:{receiver.port}"
    # The certificate is checked against the URL's name, not the pinned address.
    assert not send(receiver.url("other.example.net", "https"), allowed, dns, verify=trust)
    assert len(receiver.requests) == 1


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_redirects_are_not_followed(
    production: Settings, receivers: Callable[..., Receiver], status: int
) -> None:
    target = receivers()
    redirector = receivers(status=status, location=target.url())
    policy = EgressPolicy.of(
        production.model_copy(update={"webhook_allowed_hosts": (f"127.0.0.1:{redirector.port}",)})
    )
    assert not send(redirector.url(), policy, attempts=3)
    assert len(redirector.requests) == 1  # a redirect is an answer: no retry
    assert target.requests == []


# --- a real production-mode worker ------------------------------------------------------------


def start_worker(redis_url: str, log: Path, **env: str) -> subprocess.Popen[bytes]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("HASHSVC_")}
    environment.update(REDIS_URL=redis_url, HASHSVC_PRODUCTION="true", **env)
    with log.open("wb") as stderr:
        return subprocess.Popen(
            [sys.executable, "-m", "workers", "--one"],
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )


def stop(worker: subprocess.Popen[bytes]) -> None:
    worker.send_signal(signal.SIGTERM)
    try:
        worker.wait(15)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait()


def test_production_worker_sends_only_to_allow_listed_receivers(
    client: httpx.Client,
    settings: Settings,
    redis_url: str,
    receiver: Receiver,
    tmp_path: Path,
) -> None:
    """The platform's URL was accepted in development mode; a production-mode worker refuses
    it, until the operator allow-lists exactly this receiver (host:port)."""
    created = register(settings, redis_url, receiver.url())
    assert created.webhook_secret is not None
    headers = bearer(created.api_key)

    def run_job(log: Path, **env: str) -> str:
        worker = start_worker(redis_url, log, HASHSVC_WEBHOOK_ATTEMPTS="1", **env)
        try:
            response = client.post(
                "/v1/scan/jobs", files=upload(reupload("coffee")), headers=headers
            )
            assert response.status_code == 202, response.text
            job_id: str = response.json()["job_id"]
            wait_finished(client, created.api_key, [job_id])
            wait_for(
                lambda: f"webhook for job {job_id}" in log.read_text() or bool(receiver.requests)
            )
            return job_id
        finally:
            stop(worker)

    refused_log = tmp_path / "refused.log"
    run_job(refused_log)
    assert "refused in production mode" in refused_log.read_text()
    assert receiver.requests == []

    allowed = f'["127.0.0.1:{receiver.port}"]'
    job_id = run_job(tmp_path / "allowed.log", HASHSVC_WEBHOOK_ALLOWED_HOSTS=allowed)
    [request] = receiver.requests
    assert verify_signature(
        created.webhook_secret, request.body, request.headers["x-hashsvc-signature"]
    )
    assert job_id.encode() in request.body


# --- the reference verifier -------------------------------------------------------------------

SECRET = "whsec_test"
BODY = b'{"job_id": "j1", "status": "done", "matches": []}'
NOW = 1_700_000_000


def test_verifier_accepts_a_genuine_signature() -> None:
    header = sign(SECRET, BODY, NOW)
    assert header.startswith(f"t={NOW},v1=")
    assert verify_signature(SECRET, BODY, header, now=NOW)
    assert verify_signature(SECRET, BODY, header, now=NOW + 300)  # the window's edges
    assert verify_signature(SECRET, BODY, header, now=NOW - 300)


def test_verifier_checks_a_real_delivery(production: Settings, receiver: Receiver) -> None:
    policy = EgressPolicy(True, frozenset({f"127.0.0.1:{receiver.port}"}))
    assert send(receiver.url(), policy)
    [request] = receiver.requests
    header = request.headers[SIGNATURE_HEADER.lower()]
    assert request.headers["content-type"] == "application/json"
    assert verify_signature("s3cret", request.body, header)
    sent_at = int(header.split(",")[0].removeprefix("t="))
    assert abs(sent_at - time.time()) < 60
    assert not verify_signature("s3cret", request.body, header, now=sent_at + 301)  # replayed late


@pytest.mark.parametrize(
    "tampered_body",
    [BODY + b" ", BODY.replace(b"j1", b"j2"), b"", BODY[:-1], BODY.upper()],
)
def test_verifier_rejects_a_tampered_body(tampered_body: bytes) -> None:
    assert not verify_signature(SECRET, tampered_body, sign(SECRET, BODY, NOW), now=NOW)


def test_verifier_rejects_a_wrong_key() -> None:
    header = sign(SECRET, BODY, NOW)
    for key in ("whsec_other", SECRET + "x", SECRET[:-1], ""):
        assert not verify_signature(key, BODY, header, now=NOW)


@pytest.mark.parametrize("skew", [301, 3600, -301, -3600])
def test_verifier_rejects_timestamps_outside_300_seconds(skew: int) -> None:
    """Old (a replay) or in the future (a signer's clock, or a forged far-future replay)."""
    assert not verify_signature(SECRET, BODY, sign(SECRET, BODY, NOW), now=NOW + skew)


def test_verifier_rejects_a_fresh_timestamp_on_an_old_mac() -> None:
    old = sign(SECRET, BODY, NOW - 3600)
    mac = old.split(",v1=")[1]
    assert not verify_signature(SECRET, BODY, f"t={NOW},v1={mac}", now=NOW)


@pytest.mark.parametrize(
    "header",
    [
        "",
        "garbage",
        ",",
        "t=,v1=",
        f"t={NOW}",
        "v1=" + "0" * 64,
        f"t=abc,v1={'0' * 64}",
        f"t={NOW},v1=é",
        f"t={NOW},v1={'0' * 64}",
        f"t={NOW},v1=zz",
        f"t={'9' * 5000},v1={'0' * 64}",
    ],
)
def test_verifier_rejects_malformed_headers(header: str) -> None:
    assert not verify_signature(SECRET, BODY, header, now=NOW)


def test_verifier_rejects_decorated_genuine_headers() -> None:
    genuine = sign(SECRET, BODY, NOW)
    mac = genuine.split(",v1=")[1]
    for header in (
        genuine + ",v0=x",
        genuine.upper(),
        f"t={NOW},v1={mac.upper()}",
        f"t={NOW},v1={mac}x",
        f"t={NOW}, v1={mac}",
    ):
        assert not verify_signature(SECRET, BODY, header, now=NOW), header
