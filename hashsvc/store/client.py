"""The async Redis client factory: the only place a connection is configured."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from redis.asyncio import Redis


def connect(url: str, *, decode: bool = True) -> Redis:
    """An async client; by default speaking str (every value but upload blobs is text)."""
    return Redis.from_url(
        url,
        decode_responses=decode,
        socket_timeout=5.0,
        socket_connect_timeout=2.0,
        health_check_interval=30,
    )


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
