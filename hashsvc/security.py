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

API_KEY_PREFIX = "hsvc_pk_"
CASE_SECRET_PREFIX = "hsvc_cs_"  # noqa: S105 - a prefix, not a secret
CASE_ID_PREFIX = "case_"
_CASE_ID_RE = re.compile(r"^case_[A-Za-z0-9_-]{22}$")
_DOMAIN = b"hashsvc/v1/token-verifier"


def new_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def new_webhook_secret() -> str:
    return "hsvc_wh_" + secrets.token_urlsafe(32)


def new_job_id() -> str:
    return "j_" + secrets.token_urlsafe(16)


def new_case_secret() -> str:
    return CASE_SECRET_PREFIX + secrets.token_urlsafe(32)


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
