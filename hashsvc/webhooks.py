"""Signed completion callbacks to platforms.

Signature: ``X-Hashsvc-Signature: t=<unix time>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>``;
a receiver recomputes it and rejects stale timestamps (replays). Redirects are not followed.
Delivery is best effort with a few retries: the job's result stays readable with
``GET /v1/scan/jobs/{id}`` whatever happens to the callback.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time

import httpx

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Hashsvc-Signature"


def sign(secret: str, body: bytes, timestamp: int) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify_signature(
    secret: str, body: bytes, header: str, *, tolerance_s: int = 300, now: float | None = None
) -> bool:
    """What a receiver does: check the MAC in constant time and the timestamp's freshness."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs((now or time.time()) - timestamp) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, body, timestamp), header)


async def deliver(url: str, secret: str, body: bytes, *, timeout_s: float, attempts: int) -> bool:
    """POST the body; retry on transport errors and 5xx with a short back-off."""
    async with httpx.AsyncClient(timeout=timeout_s, follow_redirects=False) as client:
        for attempt in range(1, attempts + 1):
            headers = {
                "Content-Type": "application/json",
                SIGNATURE_HEADER: sign(secret, body, int(time.time())),
            }
            try:
                response = await client.post(url, content=body, headers=headers)
                if response.status_code < 500:
                    return response.is_success
            except httpx.HTTPError as exc:
                logger.warning("webhook attempt %d failed: %s", attempt, type(exc).__name__)
            await asyncio.sleep(0.5 * 2**attempt)
    return False
