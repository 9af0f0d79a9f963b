"""Bearer-token authentication for every API route (the rules: ``control/services/tokens.py``)."""
from __future__ import annotations

from flask import g, request

from control.api.errors import ApiError
from control.services import tokens

PUBLIC_ENDPOINTS = {"api.openapi", "api.signed_download"}


def authenticate() -> None:
    """Set ``g.user`` from ``Authorization: Bearer <token>``, or refuse with 401 saying why
    (missing, malformed, unknown, revoked, expired, or the account deactivated)."""
    if request.endpoint in PUBLIC_ENDPOINTS:
        return
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if not header:
        raise ApiError(401, "unauthorized", "missing Authorization header: send "
                       "'Authorization: Bearer <token>' (create one with `pipeline tokens create EMAIL`)")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "unauthorized", "Authorization header must be 'Bearer <token>'")
    try:
        g.user = tokens.authenticate(token.strip())
    except tokens.TokenRefused as exc:
        raise ApiError(401, exc.code, exc.message) from None
