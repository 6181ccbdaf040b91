"""S2: case enumeration and timing.

An unknown case id, a wrong secret and a withdrawn case must be indistinguishable to a client:
the same status, headers and body bytes, and the same time to answer. The enumeration and timing
parts call the real app in-process through ASGI, with its lifespan open on the test Redis, so
the figures measure the app and not a socket or an HTTP client library; each request carries
its own client address, as an ASGI server would set it, so the failed-authentication throttle
(checked on its own, on a real server from real loopback addresses) does not trip there.
"""

from __future__ import annotations

import asyncio
import gc
import json
import math
import os
import random
import secrets
import statistics
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from starlette.types import ASGIApp, Message

from hashsvc.api.app import create_app
from hashsvc.config import Settings
from hashsvc.security import is_case_id, new_case_secret
from tests.helpers import PHOTOS, bearer, victim_hashes
from tests.live import LiveService

ENUMERATED = 10_000
TIMED = int(os.environ.get("HASHSVC_S2_SAMPLES", "2000"))  # requests per kind
WARMUP = 200  # rounds of the three kinds not counted
PER_REQUEST_HEADERS = frozenset({b"x-request-id"})
KINDS = ("unknown_id", "wrong_secret", "withdrawn")
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


@dataclass(frozen=True)
class Answer:
    status: int
    headers: tuple[tuple[bytes, bytes], ...]  # as sent, in order
    body: bytes

    def comparable(self) -> tuple[int, tuple[tuple[bytes, bytes], ...], bytes]:
        """Everything but the headers that differ per request by design."""
        kept = tuple((k, v) for k, v in self.headers if k.lower() not in PER_REQUEST_HEADERS)
        return self.status, kept, self.body

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True)
class Case:
    case_id: str
    secret: str


def random_case_id(rng: random.Random) -> str:
    """A well-formed case id: ``case_`` and 22 url-safe characters."""
    return "case_" + "".join(rng.choice(_ALPHABET) for _ in range(22))


def address(n: int) -> str:
    """The n-th of many distinct client addresses (in 10.0.0.0/8)."""
    return f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"


async def call(
    app: ASGIApp, method: str, path: str, client: str, token: str = "", body: bytes = b""
) -> Answer:
    """One HTTP request through the ASGI interface, as uvicorn would make it."""
    headers = [(b"host", b"hashsvc.test")]
    if token:
        headers.append((b"authorization", f"Bearer {token}".encode()))
    if body:
        headers += [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": (client, 40000),
        "server": ("hashsvc.test", 80),
    }
    sent: list[Message] = []
    requested = False

    async def receive() -> Message:
        nonlocal requested
        if requested:
            await asyncio.Event().wait()  # the client never disconnects early
        requested = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    content = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return Answer(start["status"], tuple(start.get("headers", ())), content)


@asynccontextmanager
async def in_process(settings: Settings, redis_url: str) -> AsyncIterator[ASGIApp]:
    """The real app with its lifespan running."""
    app = create_app(settings, redis_url)
    async with app.router.lifespan_context(app):
        yield app


async def new_case(app: ASGIApp, hashes: list[dict[str, Any]], n: int) -> Case:
    answer = await call(
        app, "POST", "/v1/cases", address(n), body=json.dumps({"hashes": hashes}).encode()
    )
    assert answer.status == 201, answer.body
    created = answer.json()
    return Case(created["case_id"], created["secret"])


@pytest.fixture
def photo_hashes(settings: Settings) -> list[dict[str, Any]]:
    return victim_hashes(PHOTOS[sorted(PHOTOS)[0]], settings)


def test_random_case_ids_find_nothing(
    settings: Settings, redis_url: str, photo_hashes: list[dict[str, Any]]
) -> None:
    seed = secrets.randbits(32)
    print(f"\nS2 enumeration seed {seed}")
    rng = random.Random(seed)

    async def run() -> tuple[dict[int, int], int]:
        async with in_process(settings, redis_url) as app:
            real = [await new_case(app, photo_hashes, n) for n in range(20)]
            ids = [random_case_id(rng) for _ in range(ENUMERATED)]
            assert all(is_case_id(case_id) for case_id in ids)
            assert not {c.case_id for c in real} & set(ids)
            statuses: dict[int, int] = {}
            limit = asyncio.Semaphore(8)

            async def probe(n: int, case_id: str) -> None:
                # Half present a random well-formed secret, half a real case's secret.
                secret = new_case_secret() if n % 2 else real[n % len(real)].secret
                async with limit:
                    answer = await call(
                        app, "GET", f"/v1/cases/{case_id}", address(1000 + n), secret
                    )
                statuses[answer.status] = statuses.get(answer.status, 0) + 1

            started = time.perf_counter()
            await asyncio.gather(*(probe(n, case_id) for n, case_id in enumerate(ids)))
            elapsed = time.perf_counter() - started
            print(f"S2 {ENUMERATED} random ids in {elapsed:.1f} s: statuses {statuses}")
            # Control: the same harness does see a case that exists.
            found = await call(
                app, "GET", f"/v1/cases/{real[0].case_id}", address(999), real[0].secret
            )
            return statuses, found.status

    statuses, control = asyncio.run(run())
    assert control == 200
    assert statuses == {404: ENUMERATED}  # 0 hits, and no other answer either


def percentile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


Kind = Callable[[int], tuple[str, str]]  # round number -> (case id, secret)


async def timed_lookups(
    app: ASGIApp, kinds: dict[str, Kind], rounds: int
) -> tuple[dict[str, list[float]], set[tuple[int, tuple[tuple[bytes, bytes], ...], bytes]]]:
    """Each round sends one request of every kind, in a random order, each from a new address;
    returns milliseconds per kind (warm-up rounds dropped) and the distinct answers seen."""
    times: dict[str, list[float]] = {kind: [] for kind in kinds}
    seen = set()
    order = list(kinds)
    n = 100_000
    for round_number in range(WARMUP + rounds):
        random.shuffle(order)
        for kind in order:
            case_id, secret = kinds[kind](round_number)
            n += 1
            path, client = f"/v1/cases/{case_id}", address(n)
            started = time.perf_counter()
            answer = await call(app, "GET", path, client, secret)
            elapsed = time.perf_counter() - started
            seen.add(answer.comparable())
            if round_number >= WARMUP:
                times[kind].append(elapsed * 1000)
    return times, seen


def test_unknown_wrong_and_withdrawn_are_indistinguishable(
    settings: Settings, redis_url: str, photo_hashes: list[dict[str, Any]]
) -> None:
    async def run() -> tuple[dict[str, list[float]], set[Any]]:
        async with in_process(settings, redis_url) as app:
            live = [await new_case(app, photo_hashes, n) for n in range(20)]
            gone = [await new_case(app, photo_hashes, 100 + n) for n in range(20)]
            for n, case in enumerate(gone):
                deleted = await call(
                    app, "DELETE", f"/v1/cases/{case.case_id}", address(200 + n), case.secret
                )
                assert deleted.status == 204
            rng = random.Random(secrets.randbits(32))
            kinds: dict[str, Kind] = {
                # A fresh random id, with a real (other) case's secret.
                "unknown_id": lambda r: (random_case_id(rng), live[(r + 1) % 20].secret),
                # A live case, with another live case's secret.
                "wrong_secret": lambda r: (live[r % 20].case_id, live[(r + 7) % 20].secret),
                # A withdrawn case, with its own secret.
                "withdrawn": lambda r: (gone[r % 20].case_id, gone[r % 20].secret),
            }
            gc.collect()
            gc.disable()  # a collection inside one timed request is noise, not signal
            try:
                return await timed_lookups(app, kinds, TIMED)
            finally:
                gc.enable()

    times, seen = asyncio.run(run())
    print(f"\nS2 timing, {TIMED} interleaved requests per kind, in-process (ms):")
    for kind in KINDS:
        values = times[kind]
        print(
            f"  {kind:12} median {statistics.median(values):.3f}  p95 {percentile(values, 95):.3f}"
            f"  min {min(values):.3f}  max {max(values):.3f}"
        )
    worst_median = worst_p95 = 0.0
    for i, a in enumerate(KINDS):
        for b in KINDS[i + 1 :]:
            d_median = statistics.median(times[a]) - statistics.median(times[b])
            d_p95 = percentile(times[a], 95) - percentile(times[b], 95)
            print(f"  {a} - {b}: median {d_median:+.3f}  p95 {d_p95:+.3f}")
            worst_median = max(worst_median, abs(d_median))
            worst_p95 = max(worst_p95, abs(d_p95))

    assert len(seen) == 1, seen  # one answer: status, headers (but the request id) and body
    ((status, headers, body),) = seen
    assert status == 404
    assert (b"content-type", b"application/json") in headers
    assert json.loads(body)["error"]["code"] == "case_not_found"
    assert worst_median < 0.3
    assert worst_p95 < 1.0


def from_address(service: LiveService, host: str) -> httpx.Client:
    """A client whose connections come from ``host`` (any 127.0.0.0/8 address is local)."""
    transport = httpx.HTTPTransport(local_address=host)
    return httpx.Client(base_url=service.url, transport=transport, timeout=30)


def test_failed_lookups_are_throttled_per_address_without_locking_the_case(
    settings: Settings, service: LiveService, photo_hashes: list[dict[str, Any]]
) -> None:
    burst, per_s = settings.auth_failure_burst, settings.auth_failures_per_min / 60
    with (
        from_address(service, "127.0.0.2") as guesser,
        from_address(service, "127.0.0.3") as owner,
    ):
        created = owner.post("/v1/cases", json={"hashes": photo_hashes})
        assert created.status_code == 201, created.text
        case = Case(created.json()["case_id"], created.json()["secret"])
        path = f"/v1/cases/{case.case_id}"

        started = time.monotonic()
        answers = [guesser.get(path, headers=bearer(new_case_secret())) for _ in range(100)]
        elapsed = time.monotonic() - started
        statuses = [a.status_code for a in answers]
        # The throttled address learns nothing, not even from the right secret ...
        throttled_owner_secret = guesser.get(path, headers=bearer(case.secret))
        # ... while the owner, from another address, is not locked out.
        opened = owner.get(path, headers=bearer(case.secret))

    print(
        f"\nS2 100 failed lookups from one address in {elapsed:.2f} s: "
        f"{statuses.count(404)} x 404 then {statuses.count(429)} x 429 "
        f"(threshold {burst} at once, then {per_s * 60:g}/min); owner from another address: "
        f"{opened.status_code}"
    )
    assert statuses[:burst] == [404] * burst
    regained = math.floor(elapsed * per_s) + 1  # failures allowed again while the test ran
    assert set(statuses[burst:]) <= {404, 429}
    assert statuses.count(404) <= burst + regained
    assert statuses.count(429) >= 100 - burst - regained
    limited = [a for a in answers if a.status_code == 429]
    for answer in limited:
        assert answer.json()["error"]["code"] == "rate_limited"
        assert 1 <= int(answer.headers["Retry-After"]) <= math.ceil(1 / per_s)
    assert throttled_owner_secret.status_code == 429
    assert opened.status_code == 200, opened.text
    assert opened.json()["case_id"] == case.case_id
