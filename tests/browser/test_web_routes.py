"""The page and its assets over plain HTTP: content types, the strict Content-Security-Policy,
cache validation, no inline script or style, and nothing but the page's own files served."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import httpx
import pytest

from hashsvc.api.routes.web import WEB_DIR

CSP_DIRECTIVES = {
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
}


class InlineCode(HTMLParser):
    """Collects what a strict CSP would block: inline scripts, style attributes and elements,
    event-handler attributes, and references to other origins."""

    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = dict(attrs)
        for name, value in attrs:
            if name.startswith("on") or name == "style":
                self.problems.append(f"<{tag} {name}=...>")
            if name in ("src", "href") and value and re.match(r"^(https?:)?//", value):
                self.problems.append(f"<{tag} {name}={value}>")
        if tag == "style":
            self.problems.append("<style>")
        if tag == "script":
            self._in_script = True
            self.scripts.append(names.get("src") or "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.problems.append("inline <script>")


def test_page_headers_and_markup(client: httpx.Client) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert set(response.headers["content-security-policy"].split("; ")) == CSP_DIRECTIVES
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["cache-control"] == "no-cache"
    parser = InlineCode()
    parser.feed(response.text)
    assert parser.problems == []
    assert parser.scripts == ["/assets/app.js"]


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("app.js", "text/javascript; charset=utf-8"),
        ("pdq.js", "text/javascript; charset=utf-8"),
        ("hash-worker.js", "text/javascript; charset=utf-8"),
        ("style.css", "text/css; charset=utf-8"),
        ("favicon.svg", "image/svg+xml"),
    ],
)
def test_assets_are_served_with_their_type_and_revalidated(
    client: httpx.Client, name: str, content_type: str
) -> None:
    response = client.get(f"/assets/{name}")
    assert response.status_code == 200
    assert response.headers["content-type"] == content_type
    assert response.content == (WEB_DIR / name).read_bytes()
    assert response.headers["cache-control"] == "no-cache"
    assert "content-security-policy" in response.headers
    etag = response.headers["etag"]
    again = client.get(f"/assets/{name}", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    head = client.head(f"/assets/{name}")
    assert head.status_code == 200
    assert head.headers["content-length"] == str(len(response.content))


@pytest.mark.parametrize(
    "path",
    ["/assets/index.html", "/assets/missing.js", "/assets/..%2fapp.py", "/assets/.hidden.js"],
)
def test_only_the_page_files_are_served(client: httpx.Client, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_every_module_the_page_imports_is_served(client: httpx.Client) -> None:
    """Relative imports of every module resolve to a served asset (no build step)."""
    for module in sorted(WEB_DIR.glob("*.js")):
        for target in re.findall(r'from "\./([a-z0-9-]+\.js)"', module.read_text()):
            assert client.get(f"/assets/{target}").status_code == 200, (module.name, target)
