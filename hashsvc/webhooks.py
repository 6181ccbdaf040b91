"""Signed completion callbacks to platforms.

Signature: ``X-Hashsvc-Signature: t=<unix time>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>``.
``verify_signature`` is the reference receiver check: constant-time MAC comparison and a
timestamp within ``tolerance_s`` (300 s) of now, past or future. Within that window a captured
request can be replayed as is: receivers should also deduplicate on the body's ``job_id``.

Every attempt re-checks the URL (``hashsvc.egress``: no loopback, private or link-local
addresses in production mode), then connects to the address it vetted, with the original
``Host`` header and TLS server name, so a DNS answer changed after the check is never used.
Redirects are not followed, the response body is not read, and ``HTTP(S)_PROXY`` variables are
ignored. Delivery is best effort with a few retries: the job's result stays readable with
``GET /v1/scan/jobs/{id}`` whatever happens to the callback.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import ssl
import time

import httpx

from hashsvc.egress import DestinationRefused, EgressPolicy, HostUnresolved, Resolver, vet
from hashsvc.egress import system_resolver as _system_resolver

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Hashsvc-Signature"
REPLAY_TOLERANCE_S = 300


def _mac(secret: str, body: bytes, timestamp: int) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The signature header value for ``body`` sent at ``timestamp`` (unix seconds)."""
    return f"t={timestamp},v1={_mac(secret, body, timestamp)}"


def verify_signature(
    secret: str,
    body: bytes,
    header: str,
    *,
    tolerance_s: int = REPLAY_TOLERANCE_S,
    now: float | None = None,
) -> bool:
    """What a receiver does: parse ``t`` and ``v1``, check freshness, compare the MAC."""
    try:
        fields = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(fields.pop("t"))
        claimed = fields.pop("v1").encode("ascii")
    except (KeyError, ValueError, UnicodeError):
        return False
    if fields:  # anything besides t and v1 is not ours
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance_s:
        return False
    return hmac.compare_digest(_mac(secret, body, timestamp).encode("ascii"), claimed)


async def deliver(
    url: str,
    secret: str,
    body: bytes,
    *,
    timeout_s: float,
    attempts: int,
    policy: EgressPolicy,
    resolver: Resolver = _system_resolver,
    verify: ssl.SSLContext | bool = True,
) -> bool:
    """POST the body; retry on DNS and transport errors and 5xx with a short back-off.
    ``verify``: TLS verification as in httpx (the default trusts certifi's CAs)."""
    client = httpx.AsyncClient(
        timeout=timeout_s, follow_redirects=False, trust_env=False, verify=verify
    )
    async with client:
        for attempt in range(1, attempts + 1):
            try:
                async with asyncio.timeout(timeout_s):
                    status = await _post_once(client, url, secret, body, policy, resolver)
                if status < 500:
                    if not 200 <= status < 300:
                        logger.warning("webhook answered %d (not retried)", status)
                    return 200 <= status < 300
            except HostUnresolved as exc:
                logger.warning("webhook attempt %d: %s", attempt, exc.message)
            except DestinationRefused as exc:
                logger.warning("webhook not sent: %s", exc.message)
                return False
            except (httpx.HTTPError, TimeoutError) as exc:
                logger.warning("webhook attempt %d failed: %s", attempt, type(exc).__name__)
            if attempt < attempts:
                await asyncio.sleep(0.5 * 2**attempt)
    return False


async def _post_once(
    client: httpx.AsyncClient,
    url: str,
    secret: str,
    body: bytes,
    policy: EgressPolicy,
    resolver: Resolver,
) -> int:
    target = await vet(url, policy, resolver)
    headers = {
        "Host": target.host_header,
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign(secret, body, int(time.time())),
    }
    extensions = {"sni_hostname": target.sni_hostname} if target.sni_hostname else None
    request = client.build_request(
        "POST", target.pinned_url, content=body, headers=headers, extensions=extensions
    )
    response = await client.send(request, stream=True)
    await response.aclose()
    return response.status_code
