"""The async Redis client factory: the only place a connection is configured.

Timeouts are short and there is a single retry, so that when Redis is down or stalled a request
fails within about two seconds (the API answers 503) instead of hanging; workers and replicas
retry on their own schedule. The connection pool is bounded and *blocking*: a burst of more
concurrent commands than connections waits (at most the command timeout) for a free one,
instead of failing at once with a spurious 503 while Redis is fine (S5 saw hundreds).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import ConstantBackoff

MAX_CONNECTIONS = 100  # per client, i.e. per process and kind (text, blobs)
CONNECT_TIMEOUT_S = 0.5
COMMAND_TIMEOUT_S = 1.5
BLOB_TIMEOUT_S = 15.0  # uploads of up to max_job_upload_bytes, fsynced with the AOF


def connect(url: str, *, decode: bool = True) -> Redis:
    """An async client; by default speaking str (every value but upload blobs is text).
    The raw client (``decode=False``) moves upload blobs and gets a longer timeout."""
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=MAX_CONNECTIONS,
        timeout=COMMAND_TIMEOUT_S,  # wait for a free connection at most this long
        decode_responses=decode,
        socket_timeout=COMMAND_TIMEOUT_S if decode else BLOB_TIMEOUT_S,
        socket_connect_timeout=CONNECT_TIMEOUT_S,
        retry=Retry(ConstantBackoff(0.05), retries=1),
        health_check_interval=30,
    )
    return Redis.from_pool(pool)  # owns the pool: aclose() closes its connections


def text(value: object) -> str:
    """A reply value as str (the client decodes responses; this narrows the type)."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, str):
        return value
    raise TypeError(f"expected a Redis string reply, got {type(value).__name__}")


def text_map(mapping: Mapping[bytes | str, bytes | str] | None) -> dict[str, str]:
    return {text(k): text(v) for k, v in (mapping or {}).items()}


def text_list(values: Iterable[bytes | str | None]) -> list[str | None]:
    return [None if v is None else text(v) for v in values]
