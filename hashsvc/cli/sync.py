"""Partner commands: keep a replica of the bank in the platform's Redis (``sync``), match local
files against it (``scan-local``), and export or import hash lists as JSONL or CSV of
``{signal, hash}``."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any, TypeVar

import httpx
import typer

from hashsvc.cli.common import Files, fail, reported_errors, settings
from hashsvc.embedded import redis_for
from hashsvc.errors import MediaRejected
from hashsvc.hashing import hash_upload_sandboxed
from hashsvc.matching.local import LocalMatcher, LocalVerdict
from hashsvc.partner import (
    FORMATS,
    FeedClient,
    FeedError,
    Replica,
    SyncReport,
    format_rows,
    parse_rows,
    sync_to_head,
)
from hashsvc.store import Store
from hashsvc.store import keys as store_keys
from hashsvc.store.client import connect

T = TypeVar("T")
logger = logging.getLogger("hashsvc.sync")

RedisUrl = Annotated[
    str | None,
    typer.Option(
        "--redis-url",
        help="The platform's Redis holding the replica (default: REDIS_URL, else the embedded "
        "Redis in the data directory).",
    ),
]
Prefix = Annotated[str, typer.Option("--prefix", help="Key prefix of the replica in that Redis.")]
Format = Annotated[str, typer.Option("--format", help="jsonl or csv.")]


def _with_redis(redis_url: str | None, action: Callable[[str], Coroutine[Any, Any, T]]) -> T:
    config = settings()
    url = redis_url or config.redis_url
    with reported_errors(), redis_for(url, config.data_dir, config.appendfsync) as resolved:
        return asyncio.run(action(resolved))


def _describe(report: SyncReport) -> str:
    sizes = ", ".join(f"{signal}={n}" for signal, n in sorted(report.sizes.items()))
    took = f"{report.snapshots} snapshot(s), " if report.snapshots else ""
    return f"synced to {report.cursor}: {took}{report.changes} change(s); replica {sizes}"


def sync_command(
    server: Annotated[str, typer.Option("--server", help="The hashsvc API base URL.")],
    api_key: Annotated[
        str,
        typer.Option(
            "--api-key",
            envvar="HASHSVC_FEED_API_KEY",
            prompt="API key",
            hide_input=True,
            help="A platform key with the feed scope (or HASHSVC_FEED_API_KEY).",
        ),
    ],
    redis_url: RedisUrl = None,
    prefix: Prefix = store_keys.REPLICA_PREFIX,
    once: Annotated[
        bool, typer.Option("--once", help="Sync to the current head and exit.")
    ] = False,
    interval: Annotated[
        float, typer.Option("--interval", min=0.1, help="Seconds between polls.")
    ] = 5.0,
    page_size: Annotated[int, typer.Option("--page-size", min=1, max=1000)] = 1000,
) -> None:
    """Keep a replica of the hash bank in this platform's Redis: a snapshot, then the feed of
    adds and withdrawals (a withdrawn hash is deleted from the replica)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request otherwise

    async def run(url: str) -> None:
        redis = connect(url)
        try:
            async with httpx.AsyncClient(timeout=30.0) as http:
                client = FeedClient(server, api_key, http)
                replica = Replica(redis, prefix)
                while True:
                    try:
                        report = await sync_to_head(client, replica, page_size)
                        typer.echo(_describe(report))
                    except (FeedError, httpx.HTTPError) as exc:
                        if once:
                            raise
                        logger.warning("sync failed, retrying in %.1f s: %s", interval, exc)
                    if once:
                        return
                    await asyncio.sleep(interval)
        finally:
            await redis.aclose()

    try:
        _with_redis(redis_url, run)
    except FeedError as exc:
        fail(str(exc), 2)


def export_command(
    fmt: Format = "jsonl",
    from_bank: Annotated[
        bool,
        typer.Option(
            "--from-bank", help="Export the service's own bank (on its host) instead of a replica."
        ),
    ] = False,
    redis_url: RedisUrl = None,
    prefix: Prefix = store_keys.REPLICA_PREFIX,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here (default: stdout).")
    ] = None,
) -> None:
    """Print a hash list, one {signal, hash} per line (signal names pdq, phash; lowercase hex)."""
    if fmt not in FORMATS:
        fail(f"unknown format {fmt!r}: jsonl or csv")

    async def rows(url: str) -> list[tuple[str, str]]:
        if from_bank:
            store = Store.open(url)
            try:
                found = []
                for signal in Replica(store.redis).signals:
                    async for batch in store.changes.snapshot(signal):
                        found += [(signal, code.hex()) for _, code in batch]
                return found
            finally:
                await store.close()
        redis = connect(url)
        try:
            return [row async for row in Replica(redis, prefix).hashes()]
        finally:
            await redis.aclose()

    found = _with_redis(redis_url, rows)
    if output is None:
        sys.stdout.writelines(format_rows(found, fmt))
        return
    with open(output, "w", encoding="utf-8") as out:
        out.writelines(format_rows(found, fmt))


def import_command(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    fmt: Annotated[
        str | None, typer.Option("--format", help="jsonl or csv (default: from the extension).")
    ] = None,
    redis_url: RedisUrl = None,
    prefix: Prefix = store_keys.REPLICA_PREFIX,
) -> None:
    """Add a JSONL or CSV hash list to a replica (kept apart from the synced bank)."""
    chosen = fmt or ("csv" if file.suffix.lower() == ".csv" else "jsonl")
    if chosen not in FORMATS:
        fail(f"unknown format {chosen!r}: jsonl or csv")
    with open(file, encoding="utf-8", newline="") as lines:
        try:
            rows = list(parse_rows(lines, chosen))
        except ValueError as exc:
            fail(f"{file}: {exc}")

    async def store(url: str) -> int:
        redis = connect(url)
        try:
            return await Replica(redis, prefix).import_hashes(rows)
        finally:
            await redis.aclose()

    typer.echo(f"imported {_with_redis(redis_url, store)} hash(es)")


def _verdict_line(name: str, verdict: LocalVerdict) -> str:
    matches = [
        {"id": m.hash_id, "distance": m.distance, "variant": m.variant, "frames": m.frames}
        for m in verdict.matches
    ]
    return json.dumps(
        {
            "file": name,
            "kind": verdict.kind,
            "matched": verdict.matched,
            "matched_frames": verdict.matched_frames,
            "matches": matches,
        }
    )


def scan_local_command(
    files: Files, redis_url: RedisUrl = None, prefix: Prefix = store_keys.REPLICA_PREFIX
) -> None:
    """Match images and videos on this machine against the replica kept by `hashsvc sync`:
    hashed here (in a sandboxed decoder), nothing is sent anywhere. One JSON line per file;
    exit status 2 if any file could not be scanned."""
    config = settings()
    refused = 0

    async def run(url: str) -> None:
        nonlocal refused
        redis = connect(url)
        try:
            matcher = LocalMatcher(Replica(redis, prefix), config)
            await matcher.refresh()
            if matcher.size == 0:
                logger.warning("the replica holds no PDQ hash: run `hashsvc sync` first")
            for path in files:
                try:
                    media = await asyncio.to_thread(hash_upload_sandboxed, path, config)
                except (MediaRejected, MemoryError) as exc:
                    refused += 1
                    error = (
                        {"code": exc.reason, "message": exc.message}
                        if isinstance(exc, MediaRejected)
                        else {
                            "code": "too_much_memory",
                            "message": "decoding needs too much memory",
                        }
                    )
                    typer.echo(json.dumps({"file": path.name, "error": error}))
                    continue
                typer.echo(_verdict_line(path.name, await matcher.match(media)))
        finally:
            await redis.aclose()

    _with_redis(redis_url, run)
    if refused:
        fail(f"{refused} of {len(files)} file(s) could not be scanned", 2)


def register(app: typer.Typer) -> None:
    app.command("sync")(sync_command)
    app.command("scan-local")(scan_local_command)
    app.command("export")(export_command)
    app.command("import")(import_command)
