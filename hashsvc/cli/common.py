"""Helpers shared by the CLI commands: settings, parameter types, error reporting, HTTP calls."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn

import httpx
import typer
from redis.exceptions import RedisError

from hashsvc.config import Settings, load_settings
from hashsvc.errors import HashsvcError

Server = Annotated[
    str | None, typer.Option("--server", help="API base URL (default: HASHSVC_SERVER_URL).")
]
Files = Annotated[list[Path], typer.Argument(exists=True, dir_okay=False, readable=True)]
File = Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)]


def settings() -> Settings:
    return load_settings()


def fail(message: str, code: int = 1) -> NoReturn:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


@contextmanager
def reported_errors() -> Iterator[None]:
    """Turn domain and transport errors into one clear line and a non-zero exit."""
    try:
        yield
    except HashsvcError as exc:
        fail(exc.message, 2)
    except httpx.HTTPError as exc:
        fail(f"cannot reach the server: {exc}")
    except RedisError as exc:
        fail(f"cannot use Redis: {exc}")


def request(method: str, url: str, **kwargs: Any) -> dict[str, Any]:
    """Call the API; a 4xx/5xx ends the command with the server's error message."""
    response = httpx.request(method, url, timeout=60.0, **kwargs)
    if response.status_code >= 400:
        try:
            message = response.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = response.text[:200]
        fail(f"server answered {response.status_code}: {message}")
    if response.status_code == 204 or not response.content:
        return {}
    body: dict[str, Any] = response.json()
    return body


def base_url(server: str | None) -> str:
    return (server or settings().server_url).rstrip("/")
