"""Secrets: generation, storage as HMAC-SHA256 verifiers, constant-time comparison.

Tokens carry 256 random bits, so a keyed fast hash is a sound verifier (nothing to brute-force);
the optional pepper keeps a stolen Redis dump from being checked offline against leaked tokens.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from typing import Final, Literal, cast

# Credential kinds, spelled in the token: hsk_<kind>_<43 url-safe characters = 256 bits>.
# (Names of kinds and prefixes, not secrets.)
TOKEN_PREFIX = "hsk_"  # noqa: S105
PLATFORM_KEY: Final = "platform"
ADMIN_KEY: Final = "admin"
CASE_SECRET: Final = "case"  # noqa: S105
WEBHOOK_SECRET: Final = "whsec"  # noqa: S105
TokenKind = Literal["platform", "admin", "case", "whsec"]
_TOKEN_RE = re.compile(r"^hsk_(platform|admin|case|whsec)_[A-Za-z0-9_-]{43}$")
CASE_ID_PREFIX = "case_"
_CASE_ID_RE = re.compile(r"^case_[A-Za-z0-9_-]{22}$")
_DOMAIN = b"hashsvc/v1/token-verifier"


def new_token(kind: TokenKind) -> str:
    """A fresh credential of ``kind``: a recognisable prefix and 256 random bits."""
    return f"{TOKEN_PREFIX}{kind}_{secrets.token_urlsafe(32)}"


def token_kind(token: str) -> TokenKind | None:
    """The kind a well-formed token announces; None for anything malformed."""
    found = _TOKEN_RE.match(token)
    return cast(TokenKind, found.group(1)) if found else None


def new_api_key() -> str:
    return new_token(PLATFORM_KEY)


def new_admin_key() -> str:
    return new_token(ADMIN_KEY)


def new_key_id() -> str:
    """The public name of an issued key (to list and revoke it); reveals nothing of it."""
    return "k_" + secrets.token_hex(8)


def new_webhook_secret() -> str:
    return new_token(WEBHOOK_SECRET)


def new_job_id() -> str:
    return "j_" + secrets.token_urlsafe(16)


def new_case_secret() -> str:
    return new_token(CASE_SECRET)


def new_case_id() -> str:
    """128 random bits: case ids are not guessable or enumerable."""
    return CASE_ID_PREFIX + secrets.token_urlsafe(16)


def new_flag_id() -> str:
    """An opaque flag id handed to platforms instead of any case identifier."""
    return "f_" + secrets.token_urlsafe(16)


def derived_flag_id(job_id: str, case_id: str) -> str:
    """The flag id of a job's match on a case: the same on every delivery of the job, so a
    job processed twice raises one flag (the case id is 128 random bits: not recoverable)."""
    digest = hashlib.sha256(f"{job_id}\0{case_id}".encode()).digest()[:16]
    return "f_" + base64.urlsafe_b64encode(digest).decode().rstrip("=")


def is_case_id(text: str) -> bool:
    return bool(_CASE_ID_RE.match(text))


def verifier(token: str, pepper: str = "") -> str:
    """The stored form of a secret: HMAC-SHA256 keyed by the domain and the optional pepper."""
    key = _DOMAIN + pepper.encode()
    return hmac.new(key, token.encode(), hashlib.sha256).hexdigest()


def verify(token: str, stored_verifier: str, pepper: str = "") -> bool:
    """Constant-time check of a presented token against a stored verifier."""
    return hmac.compare_digest(verifier(token, pepper), stored_verifier)
