"""Webhook signatures: HMAC-SHA256 over ``"<timestamp>.<body>"``.

The same scheme Stripe and Slack use, so receivers already know how to check
it: recompute the HMAC with the shared secret, compare in constant time, and
refuse timestamps outside a tolerance window (replay protection). The
``Idempotency-Key`` header names the change; a receiver applies each key once.
"""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_HEADER = "X-CRM-Signature"
TIMESTAMP_HEADER = "X-CRM-Timestamp"
IDEMPOTENCY_HEADER = "Idempotency-Key"
TOPIC_HEADER = "X-CRM-Topic"
ATTEMPT_HEADER = "X-CRM-Attempt"
SCHEME = "v1"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"{SCHEME}={mac.hexdigest()}"


def verify(
    secret: str,
    timestamp: str | int,
    body: bytes,
    signature: str,
    *,
    tolerance_s: float = 300.0,
    now: float | None = None,
) -> bool:
    """True if ``signature`` is valid for ``body`` and the timestamp is fresh."""
    try:
        ts = int(timestamp)
    except (TypeError, ValueError):
        return False
    if abs((time.time() if now is None else now) - ts) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, ts, body), signature or "")
