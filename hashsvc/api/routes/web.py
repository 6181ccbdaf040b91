"""Victims: the web page at ``/`` and its static assets (``hashsvc/web``), where pictures are
hashed on the victim's device and only the hashes are sent.

Every response carries a strict Content-Security-Policy (scripts, styles, workers and requests
from this origin only; pictures and videos also from ``blob:`` URLs, which is how the page shows
local thumbnails), ``nosniff`` and ``no-referrer``. The files are read once, on first use.
They are revalidated on every use (``Cache-Control: no-cache`` with a strong ETag, answered
with 304 when unchanged): their names carry no version, and a page must never run with
hashers from another release, whose codes could differ from the server's.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from fastapi import APIRouter, Request, Response
from starlette.exceptions import HTTPException

WEB_DIR = Path(__file__).resolve().parents[2] / "web"
PAGE = "index.html"

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' blob: data:",
        "media-src 'self' blob:",
        "connect-src 'self'",
        "worker-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)

SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}

CACHE_CONTROL = "no-cache"

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}

_ASSET_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*\.(?:js|css|svg)$")

router = APIRouter(tags=["web"], include_in_schema=False)


@dataclass(frozen=True)
class WebFile:
    body: bytes
    content_type: str
    etag: str


@cache
def web_files() -> dict[str, WebFile]:
    """Every servable file of ``hashsvc/web`` by name (read once)."""
    files: dict[str, WebFile] = {}
    for path in sorted(WEB_DIR.iterdir()):
        content_type = CONTENT_TYPES.get(path.suffix)
        if not path.is_file() or content_type is None:
            continue
        body = path.read_bytes()
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        files[path.name] = WebFile(body, content_type, etag)
    return files


def _serve(name: str, request: Request) -> Response:
    found = web_files().get(name)
    if found is None:
        raise HTTPException(404, "Not Found")
    headers = {**SECURITY_HEADERS, "Cache-Control": CACHE_CONTROL, "ETag": found.etag}
    if found.etag in _etags(request.headers.get("if-none-match", "")):
        return Response(status_code=304, headers=headers)
    body = b"" if request.method == "HEAD" else found.body
    headers["Content-Length"] = str(len(found.body))
    return Response(body, media_type=found.content_type, headers=headers)


def _etags(header: str) -> set[str]:
    return {tag.strip().removeprefix("W/") for tag in header.split(",") if tag.strip()}


@router.api_route("/", methods=["GET", "HEAD"])
async def page(request: Request) -> Response:
    """The victim page: hash pictures and videos locally, send hashes, follow, withdraw."""
    return _serve(PAGE, request)


@router.api_route("/assets/{name}", methods=["GET", "HEAD"])
async def asset(name: str, request: Request) -> Response:
    """A script, style sheet or icon of the page."""
    if not _ASSET_NAME.match(name):
        raise HTTPException(404, "Not Found")
    return _serve(name, request)
