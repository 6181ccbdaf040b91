"""B3: body-size, multipart and slow-client limits, against a real `hashsvc serve` process.

What the server read is observed from the client, on raw sockets: the client sends its body in
small paced pieces, checks before each piece whether an answer has arrived, and counts the bytes
it had handed to the kernel by then (``sent``) and, of those, the ones the server's kernel had
acknowledged (``delivered``: ``sent`` minus the client's unacknowledged send queue, SIOCOUTQ).
The server's application cannot have read more than ``delivered`` when it answered.

The server runs with a 10 MiB upload cap and a 3 s body timeout (30 s in production), so the
slow-client phase takes seconds; its figures are printed (``pytest -s``).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import fcntl
import json
import re
import select
import socket
import statistics
import termios
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from hashsvc.api.limits import LINGER_S
from hashsvc.config import Settings
from hashsvc.embedded import EmbeddedRedis
from hashsvc.store.client import MAX_CONNECTIONS
from tests.helpers import UNTHROTTLED, bearer, make_platform, reupload, upload
from tests.security.served_api import ServedApi

MiB = 1024 * 1024
KiB = 1024
CAP = 10 * MiB  # max_upload_bytes of the served process
JSON_CAP = 1 * MiB  # max_request_json_bytes (the default)
BODY_TIMEOUT_S = 3.0  # body_timeout_s of the served process (default 30)
SLOW_CLIENTS = 100
SLOW_IMAGES = 30  # of the slow clients, image uploads; the others submit cases (no key needed)
NORMAL_RATE = 10  # hash scans per second during the slow-client phase
IMAGE_RATE = 2  # image scans per second during the slow-client phase
P99_BOUND_S = 1.0  # the target is 200 ms; asserted loosely for a shared CI machine
PHASH = "c3d3e3b3c1c19c9c"


@dataclass
class Served:
    api: ServedApi
    key: str

    @property
    def port(self) -> int:
        return self.api.port


def _serve(redis_url: str, data_dir: Path, key: str, **env: str) -> Iterator[Served]:
    base = {
        "HASHSVC_MAX_UPLOAD_BYTES": str(CAP),
        "HASHSVC_BODY_TIMEOUT_S": str(BODY_TIMEOUT_S),
        "HASHSVC_SCAN_RATE_PER_S": "1000000",
        "HASHSVC_SCAN_BURST": "1000000",
        "HASHSVC_CASE_CREATE_PER_MIN": "1000000",
        "HASHSVC_CASE_CREATE_BURST": "1000000",
    }
    api = ServedApi(redis_url, data_dir, env={**base, **env})
    yield Served(api, key)
    api.stop()
    assert "Traceback" not in api.logs()


@pytest.fixture(scope="module")
def platform_key(redis_server: EmbeddedRedis) -> str:
    with redis.Redis.from_url(redis_server.url) as client:
        client.flushall()
    settings = Settings(redis_url=redis_server.url, **UNTHROTTLED)
    return make_platform(settings, redis_server.url, "UploadCo")


@pytest.fixture(scope="module")
def served(
    redis_server: EmbeddedRedis, tmp_path_factory: pytest.TempPathFactory, platform_key: str
) -> Iterator[Served]:
    """`hashsvc serve` with a 10 MiB upload cap and a 3 s body timeout, other limits default."""
    data_dir = tmp_path_factory.mktemp("b3") / "serve"
    yield from _serve(redis_server.url, data_dir, platform_key)


@pytest.fixture(scope="module")
def unadmitted(
    redis_server: EmbeddedRedis, tmp_path_factory: pytest.TempPathFactory, platform_key: str
) -> Iterator[Served]:
    """The same with admission limits far above the test's load."""
    data_dir = tmp_path_factory.mktemp("b3") / "serve-unadmitted"
    env = {"HASHSVC_MAX_IN_FLIGHT": "10000", "HASHSVC_MAX_CONCURRENT_DECODES": "10000"}
    yield from _serve(redis_server.url, data_dir, platform_key, **env)


# --- a raw HTTP/1.1 client that paces its body and watches for an early answer ---------------


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    sent: int  # body bytes (with chunk framing) handed to the kernel before the answer came
    delivered: int  # of those, acknowledged by the server's kernel
    closed: bool  # the server closed the connection after answering
    elapsed_s: float

    def error(self) -> dict[str, Any]:
        assert self.headers.get("content-type", "").startswith("application/json"), self.headers
        error: dict[str, Any] = json.loads(self.body)["error"]
        return error


def _unacked(sock: socket.socket) -> int:
    """Bytes in the socket's send queue the peer has not acknowledged (SIOCOUTQ)."""
    buf = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0")
    return int.from_bytes(buf, "little")


def _head(port: int, path: str, headers: dict[str, str]) -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _read_answer(sock: socket.socket) -> tuple[int, dict[str, str], bytes, bool]:
    """Status, headers and body of the response, and whether the server then closed."""
    data = b""
    while b"\r\n\r\n" not in data:
        piece = sock.recv(65536)
        assert piece, f"connection closed before a response: {data!r}"
        data += piece
    head, body = data.split(b"\r\n\r\n", 1)
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, v in (h.split(":", 1) for h in header_lines)}
    while len(body) < int(headers.get("content-length", "0")):
        piece = sock.recv(65536)
        assert piece, "connection closed inside the response body"
        body += piece
    try:
        closed = sock.recv(1) == b""
    except ConnectionResetError:
        closed = True
    except TimeoutError:
        closed = False
    return int(status_line.split()[1]), headers, body, closed


def paced_post(
    port: int,
    path: str,
    headers: dict[str, str],
    pieces: Iterator[bytes],
    pace_s: float = 0.0005,
) -> Answer:
    """Send the headers, then ``pieces`` one by one (each after the previous one was
    acknowledged, and ``pace_s`` apart) until the body ends or an answer arrives."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(_head(port, path, headers))
        sent = 0
        delivered = -1
        for piece in pieces:
            if select.select([sock], [], [], 0)[0]:
                delivered = sent - _unacked(sock)
                break
            try:
                sock.sendall(piece)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(piece)
            deadline = time.monotonic() + 1.0
            while _unacked(sock) and time.monotonic() < deadline:
                time.sleep(0.0001)
            time.sleep(pace_s)
        if delivered < 0:  # the body ended (or the connection broke) before the answer
            select.select([sock], [], [], 10)
            delivered = sent - _unacked(sock)
        elapsed = time.monotonic() - started
        sock.settimeout(LINGER_S + 3)  # the server may linger before it closes
        status, answer_headers, body, closed = _read_answer(sock)
    return Answer(status, answer_headers, body, sent, delivered, closed, elapsed)


def zeros(total: int, piece: int) -> Iterator[bytes]:
    for _ in range(total // piece):
        yield b"\0" * piece


def chunked(pieces: Iterator[bytes]) -> Iterator[bytes]:
    for piece in pieces:
        yield b"%x\r\n%b\r\n" % (len(piece), piece)
    yield b"0\r\n\r\n"


def split(body: bytes, piece: int) -> Iterator[bytes]:
    for start in range(0, len(body), piece):
        yield body[start : start + piece]


def auth(served: Served, content_type: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {served.key}", "Content-Type": content_type}


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100  # utime, stime in clock ticks (USER_HZ)


def _socket_kinds(http_port: int) -> dict[str, str]:
    """Socket inode -> "http" (a TCP socket on ``http_port``) or "unix" (a Unix-domain one)."""
    kinds = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == http_port:
                kinds[fields[9]] = "http"
    for line in Path("/proc/net/unix").read_text().splitlines()[1:]:
        kinds[line.split()[6]] = "unix"
    return kinds


def fds(served: Served) -> collections.Counter[str]:
    """The server's open descriptors by kind: ``http`` (its listening socket and client
    connections), ``unix`` (its Redis connection pools: they grow with concurrency up to their
    bound, and are kept) and ``other``."""
    sockets = _socket_kinds(served.port)
    kinds: collections.Counter[str] = collections.Counter()
    for fd in Path(f"/proc/{served.api.pid}/fd").iterdir():
        try:
            target = fd.readlink().name
        except FileNotFoundError:  # closed meanwhile
            continue
        kinds[sockets.get(target.removeprefix("socket:[").rstrip("]"), "other")] += 1
    return kinds


# --- (a), (b): byte limits ------------------------------------------------------------------


def test_a_declared_50_mb_is_refused_before_the_body_is_read(served: Served) -> None:
    headers = {**auth(served, "image/jpeg"), "Content-Length": str(50 * MiB)}
    answer = paced_post(served.port, "/v1/scan", headers, zeros(50 * MiB, 4 * KiB))
    print(
        f"\n(a) 50 MB declared: {answer.status} after {answer.sent} B sent, "
        f"{answer.delivered} B delivered, {answer.elapsed_s * 1000:.0f} ms; closed={answer.closed}"
    )
    assert answer.status == 413
    error = answer.error()
    assert error["code"] == "request_too_large"
    assert str(CAP) in error["message"]
    assert answer.delivered <= 64 * KiB
    assert answer.sent <= 64 * KiB
    assert answer.closed  # nothing more is read from this connection


@pytest.mark.parametrize("content_type", ["image/jpeg", "multipart/form-data; boundary=b"])
def test_b_chunked_50_mb_is_cut_at_the_cap(served: Served, content_type: str) -> None:
    limit = CAP + (64 * KiB if content_type.startswith("multipart/") else 0)
    headers = {**auth(served, content_type), "Transfer-Encoding": "chunked"}
    body = zeros(50 * MiB, 16 * KiB)
    if content_type.startswith("multipart/"):
        part = b'--b\r\nContent-Disposition: form-data; name="file"; filename="x.jpg"\r\n\r\n'
        body = iter([part, *body])
    answer = paced_post(served.port, "/v1/scan", headers, chunked(body))
    print(
        f"\n(b) 50 MB chunked ({content_type}): {answer.status} after {answer.sent} B sent, "
        f"{answer.delivered} B delivered (limit {limit}), {answer.elapsed_s:.2f} s"
    )
    assert answer.status == 413
    assert str(limit) in answer.error()["message"]
    assert limit < answer.delivered <= limit + 64 * KiB
    assert answer.closed


def test_b_httpx_client_writing_its_whole_body_still_gets_the_413(served: Served) -> None:
    """httpx writes the whole body before reading: the server does not drain the rest, yet the
    client gets the 413 (Linux keeps received data readable after the connection is reset)."""
    for content in (zeros(50 * MiB, 64 * KiB), b"\0" * (50 * MiB)):
        response = httpx.post(
            f"{served.api.url}/v1/scan",
            content=content,
            headers=auth(served, "image/jpeg"),
            timeout=30,
        )
        assert response.status_code == 413, response.text
        assert response.json()["error"]["code"] == "request_too_large"


# --- (c) multipart --------------------------------------------------------------------------


def _fields(count: int, name: str) -> bytes:
    field = f'--b\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n\r\n'.encode()
    return field * count + b"--b--\r\n"


@pytest.mark.parametrize(
    ("name", "mentions"), [("file", "too many parts"), ("f", "unexpected form field")]
)
def test_c_10000_empty_fields_fail_at_the_first_bad_part(
    served: Served, name: str, mentions: str
) -> None:
    body = _fields(10_000, name)
    headers = {**auth(served, "multipart/form-data; boundary=b"), "Content-Length": str(len(body))}
    cpu_before = cpu_s(served.api.pid)
    answer = paced_post(served.port, "/v1/scan", headers, split(body, 4 * KiB))
    cpu = cpu_s(served.api.pid) - cpu_before
    print(
        f"\n(c) 10,000 empty '{name}' fields ({len(body)} B): {answer.status} after "
        f"{answer.delivered} B delivered, {answer.elapsed_s * 1000:.0f} ms, server CPU {cpu:.2f} s"
    )
    assert answer.status == 422
    error = answer.error()
    assert error["code"] == "invalid_request"
    assert mentions in error["message"]
    assert answer.delivered <= 64 * KiB < len(body)  # refused early, not after parsing it all
    assert answer.closed  # the rest of the body is not read
    assert cpu < 0.5


def test_c_two_files_are_refused(served: Served) -> None:
    files = [("file", ("a.jpg", b"\xff\xd8" * 100, "image/jpeg"))] * 2
    response = httpx.post(
        f"{served.api.url}/v1/scan",
        files=files,
        headers={"Authorization": f"Bearer {served.key}"},
        timeout=30,
    )
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert "more than one file" in error["message"]


# --- (d) JSON -------------------------------------------------------------------------------


def _hashes(count: int) -> bytes:
    return json.dumps({"hashes": [{"signal": "phash", "hash": PHASH}] * count}).encode()


@pytest.mark.parametrize("path", ["/v1/cases", "/v1/scan"])
@pytest.mark.parametrize("kind", ["100k hashes", "10 MB"])
def test_d_big_json_is_refused_naming_the_limit(served: Served, path: str, kind: str) -> None:
    body = (
        _hashes(100_000) if kind == "100k hashes" else b'{"hashes": ["' + b"a" * 10 * MiB + b'"]}'
    )
    with httpx.Client(base_url=served.api.url, timeout=30) as client:
        for chunk_it in (False, True):  # with a Content-Length, then chunked
            content = split(body, 64 * KiB) if chunk_it else body
            started = time.monotonic()
            response = client.post(path, content=content, headers=auth(served, "application/json"))
            elapsed = time.monotonic() - started
            print(
                f"\n(d) {kind} ({len(body)} B) to {path}, chunked={chunk_it}: "
                f"{response.status_code} in {elapsed:.2f} s"
            )
            assert response.status_code == 413, response.text
            error = response.json()["error"]
            assert error["code"] == "request_too_large"
            assert f"limit of {JSON_CAP} bytes" in error["message"]
            assert elapsed < 2.0


def test_d_hash_count_over_the_scan_limit_names_it(served: Served) -> None:
    """Under the byte limit, the count limit: 10,000 hashes (~500 KB) to a scan."""
    body = _hashes(10_000)
    assert len(body) < JSON_CAP
    started = time.monotonic()
    response = httpx.post(
        f"{served.api.url}/v1/scan",
        content=body,
        headers=auth(served, "application/json"),
        timeout=30,
    )
    print(f"\n(d) 10,000 hashes: {response.status_code} in {time.monotonic() - started:.2f} s")
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "too_many_hashes"
    assert re.search(r"\b500\b", error["message"])


# --- (e) slow clients -----------------------------------------------------------------------


@dataclass
class SlowResult:
    status: int
    code: str
    after_s: float  # from the end of the headers to the answer
    closed: bool  # the server closed the connection after answering


async def _answer_of(reader: asyncio.StreamReader) -> tuple[int, str]:
    """Status and error code of a response."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
    body = await reader.readexactly(int(length.group(1)) if length else 0)
    code = json.loads(body)["error"]["code"] if body.startswith(b"{") else ""
    return int(head.split()[1]), code


async def _slow_upload(port: int, head: bytes, stop: asyncio.Event) -> SlowResult:
    """Headers, then one body byte per second until the server answers."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head)
        await writer.drain()
        started = time.monotonic()

        async def trickle() -> None:
            while not stop.is_set():
                writer.write(b"\0")
                await writer.drain()
                await asyncio.sleep(1.0)

        trickler = asyncio.create_task(trickle())
        try:
            try:
                status, code = await asyncio.wait_for(_answer_of(reader), BODY_TIMEOUT_S + 20)
            except (ConnectionError, asyncio.IncompleteReadError):
                status, code = 0, "no answer"
            after = time.monotonic() - started
            try:
                closed = await asyncio.wait_for(reader.read(1), LINGER_S + 3) == b""
            except ConnectionResetError:
                closed = True
            except TimeoutError:
                closed = False
        finally:
            trickler.cancel()
            await asyncio.gather(trickler, return_exceptions=True)
        return SlowResult(status, code, after, closed)
    finally:
        writer.close()
        await asyncio.gather(writer.wait_closed(), return_exceptions=True)


async def _slow_headers(port: int, stop: asyncio.Event) -> bool:
    """A request whose headers never end (one byte a second): still open when told to stop?"""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"POST /v1/scan HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        while not stop.is_set():
            writer.write(b"a")
            await writer.drain()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=1.0)
        return not reader.at_eof()
    except ConnectionError:
        return False
    finally:
        writer.close()
        await asyncio.gather(writer.wait_closed(), return_exceptions=True)


async def _traffic(
    url: str, key: str, stop: asyncio.Event, rate: float, image: bytes | None = None
) -> list[tuple[int, float]]:
    """Scans at ``rate`` per second until told to stop: of one hash, or of ``image`` when
    given; (status, seconds) of each."""
    results: list[tuple[int, float]] = []
    payload = {"hashes": [{"signal": "phash", "hash": PHASH}]}
    request: dict[str, Any] = {"files": upload(image)} if image else {"json": payload}
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        while not stop.is_set():
            tick = time.monotonic()
            try:
                response = await client.post("/v1/scan", headers=bearer(key), **request)
                status = response.status_code
            except httpx.TransportError:
                status = 0
            results.append((status, time.monotonic() - tick))
            await asyncio.sleep(max(0.0, 1 / rate - (time.monotonic() - tick)))
    return results


@dataclass
class Phase:
    slow: list[SlowResult]
    slow_headers_open: list[bool]
    hashes: list[tuple[int, float]]
    images: list[tuple[int, float]]
    baseline: collections.Counter[str]
    peak: collections.Counter[str]
    final: collections.Counter[str]

    def report(self, label: str) -> None:
        answers = collections.Counter((r.status, r.code) for r in self.slow)
        timed_out = [r.after_s for r in self.slow if r.status == 408] or [0.0]
        latencies = [seconds for _, seconds in self.hashes]
        print(
            f"\n(e) {label}: {SLOW_CLIENTS} clients at 1 B/s ({SLOW_IMAGES} image uploads, "
            f"{SLOW_CLIENTS - SLOW_IMAGES} case submissions): answers {dict(answers)}, "
            f"{sum(r.closed for r in self.slow)} connections closed by the server; 408s after "
            f"{min(timed_out):.2f}-{max(timed_out):.2f} s (body timeout {BODY_TIMEOUT_S:g} s)"
            f"\n    hash scans at {NORMAL_RATE}/s: {dict(self.statuses(self.hashes))}, "
            f"p50 {statistics.median(latencies) * 1000:.1f} ms, p99 {self.p99() * 1000:.1f} ms, "
            f"max {max(latencies) * 1000:.1f} ms (target p99 200 ms, asserted "
            f"{P99_BOUND_S * 1000:.0f} ms)"
            f"\n    image scans at {IMAGE_RATE}/s: {dict(self.statuses(self.images))}"
            f"\n    server FDs (http/unix/other): baseline {self._fds(self.baseline)}, "
            f"during {self._fds(self.peak)}, after {self._fds(self.final)}"
            f"\n    slow-header connections open after 6.5 s: {sum(self.slow_headers_open)} of 3"
        )

    @staticmethod
    def _fds(kinds: collections.Counter[str]) -> str:
        return f"{kinds['http']}/{kinds['unix']}/{kinds['other']} = {kinds.total()}"

    @staticmethod
    def statuses(results: list[tuple[int, float]]) -> collections.Counter[int]:
        return collections.Counter(status for status, _ in results)

    def p99(self) -> float:
        ordered = sorted(seconds for _, seconds in self.hashes)
        return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


def slow_client_phase(served: Served) -> Phase:
    """Normal traffic (hash scans and image scans) while SLOW_CLIENTS clients send their
    bodies at 1 B/s and 3 clients their headers at 1 B/s; the server's FDs before, during and
    after."""
    url, key = served.api.url, served.key
    image_head = _head(
        served.port, "/v1/scan", {**auth(served, "image/jpeg"), "Content-Length": "100000"}
    )
    case_head = _head(
        served.port,
        "/v1/cases",
        {"Content-Type": "application/json", "Content-Length": "100000"},
    )
    heads = [image_head] * SLOW_IMAGES + [case_head] * (SLOW_CLIENTS - SLOW_IMAGES)
    image = reupload("coffee")

    async def run() -> Phase:
        warm = asyncio.Event()
        asyncio.get_running_loop().call_later(1.0, warm.set)
        await asyncio.gather(  # open the server's pools and decoders: then the FD baseline
            _traffic(url, key, warm, NORMAL_RATE), _traffic(url, key, warm, IMAGE_RATE, image)
        )
        await asyncio.sleep(0.5)
        baseline = fds(served)
        stop_traffic, stop_slow = asyncio.Event(), asyncio.Event()
        hashes = asyncio.create_task(_traffic(url, key, stop_traffic, NORMAL_RATE))
        images = asyncio.create_task(_traffic(url, key, stop_traffic, IMAGE_RATE, image))
        slow_headers = [
            asyncio.create_task(_slow_headers(served.port, stop_slow)) for _ in range(3)
        ]
        uploads = asyncio.gather(*(_slow_upload(served.port, h, stop_slow) for h in heads))
        await asyncio.sleep(BODY_TIMEOUT_S / 2)
        peak = fds(served)
        slow = await uploads
        # uvicorn's keep-alive timeout is 5 s: outlive it with the slow headers
        await asyncio.sleep(max(0.0, 6.5 - BODY_TIMEOUT_S))
        stop_slow.set()
        stop_traffic.set()
        still_open = list(await asyncio.gather(*slow_headers))
        return Phase(slow, still_open, await hashes, await images, baseline, peak, peak)

    phase = asyncio.run(run())
    deadline = time.monotonic() + 5
    while not _freed(phase.final, phase.baseline) and time.monotonic() < deadline:
        time.sleep(0.1)
        phase.final = fds(served)
    return phase


def _freed(now: collections.Counter[str], baseline: collections.Counter[str]) -> bool:
    """Back to the baseline, but for the Redis pools (bounded, and kept once grown)."""
    return now["http"] <= baseline["http"] and now["other"] <= baseline["other"]


def check_phase(phase: Phase) -> None:
    # Each slow client is answered within the body timeout (408), or refused at once (503 when
    # the server sheds load), and its connection closed: none is held past the timeout.
    answers = {(r.status, r.code) for r in phase.slow}
    assert answers <= {(408, "request_timeout"), (503, "overloaded")}, answers
    assert all(r.closed for r in phase.slow), [r for r in phase.slow if not r.closed][:3]
    assert all(r.after_s <= BODY_TIMEOUT_S + 2.0 for r in phase.slow)
    assert all(r.after_s >= BODY_TIMEOUT_S * 0.95 for r in phase.slow if r.status == 408)
    # the slow connections held descriptors; all are freed (the Redis pools stay bounded)
    held = sum(r.status == 408 for r in phase.slow)
    assert phase.peak["http"] >= phase.baseline["http"] + held
    assert _freed(phase.final, phase.baseline)
    assert phase.final["unix"] <= phase.baseline["unix"] + 2 * MAX_CONNECTIONS
    # uvicorn does not bound slow headers (README, Security: a reverse proxy must). Should it
    # start to, this fails: then update the README.
    assert all(phase.slow_headers_open)
    # Normal traffic flows: scans of hashes and of images.
    assert set(phase.statuses(phase.hashes)) == {200}, phase.statuses(phase.hashes)
    assert len(phase.hashes) >= NORMAL_RATE * 5
    assert phase.p99() <= P99_BOUND_S
    assert set(phase.statuses(phase.images)) == {200}, phase.statuses(phase.images)


def test_e_slow_clients_are_cut_at_the_body_timeout(unadmitted: Served) -> None:
    """The body timeout alone, on a server whose admission limits are out of the way: every
    slow client gets its 408 at the timeout, and the connection is closed."""
    phase = slow_client_phase(unadmitted)
    phase.report("admission limits raised")
    check_phase(phase)
    assert {r.status for r in phase.slow} == {408}


def test_e_slow_clients_do_not_starve_normal_traffic(served: Served) -> None:
    """The same with the production admission limits (64 requests in flight, 4 decodes)."""
    phase = slow_client_phase(served)
    phase.report("production admission limits")
    check_phase(phase)


def test_e_an_early_answer_closes_a_trickling_upload(served: Served) -> None:
    """A 401 given before the body is read closes the connection: uvicorn would otherwise keep
    reading the rest of the body to reuse the connection, however slowly it came."""
    headers = {"Content-Type": "image/jpeg", "Transfer-Encoding": "chunked"}
    trickle = (b"1\r\n\0\r\n" for _ in range(30))
    answer = paced_post(served.port, "/v1/scan", headers, trickle, pace_s=0.2)
    print(f"\n(e) unauthenticated trickle: {answer.status} after {answer.elapsed_s:.2f} s")
    assert answer.status == 401
    assert answer.closed
    assert answer.elapsed_s < 2.0


def test_e_an_aborted_upload_is_no_error(served: Served) -> None:
    """A client leaving mid-body gets nothing and logs no error; the server serves on."""
    logged = len(served.api.logs())
    for path, content_type in (("/v1/scan", "image/jpeg"), ("/v1/cases", "application/json")):
        headers = {**auth(served, content_type), "Content-Length": "100000"}
        with socket.create_connection(("127.0.0.1", served.port), timeout=5) as sock:
            sock.sendall(_head(served.port, path, headers) + b"\0" * 1000)
            time.sleep(0.2)
    time.sleep(0.3)
    assert '"level":"error"' not in served.api.logs()[logged:]
    response = httpx.post(
        f"{served.api.url}/v1/scan",
        json={"hashes": [{"signal": "phash", "hash": PHASH}]},
        headers=bearer(served.key),
    )
    assert response.status_code == 200
