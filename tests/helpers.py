"""Test helpers: fixture photos as bytes, re-uploaded variants, and hash payloads."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import httpx

from fixtures.make_variants import ALL_VARIANTS, encode, load_photo, photo_paths
from hashsvc.config import Settings
from hashsvc.hashing import hash_file
from hashsvc.platforms import create_admin_key, register_platform, resolve_file_root
from hashsvc.store import Store

PHOTOS = {path.stem: path for path in photo_paths()}

# Quotas high enough never to trip: for tests and benchmarks that are not about quotas and
# send many requests from one loopback address.
UNTHROTTLED: dict[str, Any] = {
    "scan_rate_per_s": 1e6,
    "scan_burst": 1_000_000,
    "case_create_per_min": 1e6,
    "case_create_burst": 1_000_000,
}


def reupload(name: str, variant: str = "reencode_q60", fmt: str = "JPEG") -> bytes:
    """A fixture photo after an everyday transform, encoded as a platform would receive it."""
    image = ALL_VARIANTS[variant](load_photo(PHOTOS[name]))
    if fmt == "JPEG":
        image = image.convert("RGB")
    return encode(image, fmt, **({"quality": 85} if fmt == "JPEG" else {}))


def balanced_pdq(rng: random.Random) -> str:
    """A random PDQ code with 128 of 256 bits set, as real photographs give."""
    bits = [1] * 128 + [0] * 128
    rng.shuffle(bits)
    return int("".join(map(str, bits)), 2).to_bytes(32, "big").hex()


def victim_hashes(path: Path, settings: Settings) -> list[dict[str, Any]]:
    """What a victim's device submits for one photo."""
    return [
        {"signal": h.signal, "hash": h.hex, "quality": h.quality} for h in hash_file(path, settings)
    ]


def upload(data: bytes, name: str = "upload.jpg") -> dict[str, Any]:
    return {"file": (name, data, "application/octet-stream")}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def all_flags(client: httpx.Client, api_key: str, **params: str) -> list[dict[str, Any]]:
    """Every flag of a platform, newest first, following the pages."""
    flags: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {**params, "limit": "100", **({"cursor": cursor} if cursor else {})}
        page = client.get("/v1/flags", params=query, headers=bearer(api_key))
        assert page.status_code == 200, page.text
        flags += page.json()["flags"]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            return flags


def make_admin_key(settings: Settings, redis_url: str, label: str = "ops") -> str:
    """Issue an operator key straight in the store."""

    async def create() -> str:
        store = Store.open(redis_url)
        try:
            return (await create_admin_key(label, settings, store)).api_key
        finally:
            await store.close()

    return asyncio.run(create())


def make_platform(settings: Settings, redis_url: str, name: str) -> str:
    """Register a platform straight in the store; returns its API key."""

    async def create() -> str:
        store = Store.open(redis_url)
        try:
            return (await register_platform(name, settings, store)).api_key
        finally:
            await store.close()

    return asyncio.run(create())


def make_platform_with_root(settings: Settings, redis_url: str, name: str, root: Path) -> str:
    """A platform whose jobs may name files under ``root``; returns its API key."""

    async def create() -> str:
        store = Store.open(redis_url)
        try:
            created = await register_platform(
                name, settings, store, file_root=resolve_file_root(root)
            )
            return created.api_key
        finally:
            await store.close()

    return asyncio.run(create())


def make_platform_with_webhook(
    settings: Settings, redis_url: str, name: str, url: str
) -> tuple[str, str]:
    """A platform with a webhook; returns its API key and webhook secret."""

    async def create() -> tuple[str, str]:
        store = Store.open(redis_url)
        try:
            created = await register_platform(name, settings, store, webhook_url=url)
            assert created.webhook_secret is not None
            return created.api_key, created.webhook_secret
        finally:
            await store.close()

    return asyncio.run(create())
