"""Bearer-token authentication for every API route."""
from __future__ import annotations

from flask import g, request
from sqlalchemy import select

from control.api.errors import ApiError
from control.extensions import db
from control.models import ApiToken, hash_token, utcnow

PUBLIC_ENDPOINTS = {"api.openapi", "api.signed_download"}


def authenticate() -> None:
    """Set ``g.user`` from ``Authorization: Bearer <token>``, or refuse with 401."""
    if request.endpoint in PUBLIC_ENDPOINTS:
        return
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if not header:
        raise ApiError(401, "unauthorized", "missing Authorization header: send "
                       "'Authorization: Bearer <token>' (create one with `pipeline tokens create EMAIL`)")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "unauthorized", "Authorization header must be 'Bearer <token>'")
    row = db.session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(token.strip())))
    if row is None or row.revoked_at is not None:
        raise ApiError(401, "unauthorized", "invalid or revoked API token")
    now = utcnow()
    if row.last_used_at is None or (now - row.last_used_at).total_seconds() > 60:
        row.last_used_at = now
        db.session.commit()
    g.user = row.user
