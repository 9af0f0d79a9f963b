"""The token RunPod's completion webhook proves itself with: one per attempt, random, shown
only in the URL handed to ``/run`` (``<attempt id>.<secret>``) and stored as a sha256 hash.

>>> token = "att_0123.s3cret"
>>> split(token)
('att_0123', 's3cret')
>>> split("no-dot") is None
True
"""
from __future__ import annotations

import hashlib
import hmac
import secrets

from flask import current_app

from control.extensions import db
from control.models import JobAttempt


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def issue(attempt: JobAttempt) -> str:
    """A new token for ``attempt`` (its hash kept on the row; the caller commits)."""
    secret = secrets.token_urlsafe(24)
    attempt.webhook_token_hash = _hash(secret)
    return f"{attempt.id}.{secret}"


def split(token: str) -> tuple[str, str] | None:
    attempt_id, dot, secret = token.partition(".")
    return (attempt_id, secret) if dot and attempt_id and secret else None


def verify(token: str) -> JobAttempt | None:
    """The attempt the token was issued for, or None for a token that is not one."""
    parts = split(token or "")
    if parts is None or len(token) > 200:
        return None
    attempt = db.session.get(JobAttempt, parts[0])
    if attempt is None or not attempt.webhook_token_hash:
        return None
    return attempt if hmac.compare_digest(attempt.webhook_token_hash, _hash(parts[1])) else None


def webhook_url(token: str) -> str | None:
    """Where RunPod calls when the attempt ends; None when ``COMPLETION_WEBHOOK`` is off."""
    cfg = current_app.config
    if not cfg.get("COMPLETION_WEBHOOK", True):
        return None
    return f"{cfg['PUBLIC_BASE_URL']}/api/training/webhook/{token}"
