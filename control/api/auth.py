"""Bearer-token authentication for every API route (the rules: ``control/services/tokens.py``)."""
from __future__ import annotations

from flask import g, request

from control.api.errors import ApiError
from control.services import tokens

PUBLIC_ENDPOINTS = {"api.openapi", "api.signed_download", "api.completion_webhook"}   # the last: the path's token is the proof


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
        g.user = tokens.check(presented_token())
    except tokens.TokenRefused as exc:
        raise ApiError(401, exc.code, exc.message) from None


def presented_token():
    """The token this request's ``Authorization: Bearer`` header names, looked up once per
    request (the rate limit keys on it before authentication), or None."""
    cache = request.environ                  # this request's own (g can outlive a request)
    if "brightrun.presented_token" not in cache:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        cache["brightrun.presented_token"] = (tokens.find(token.strip())
                                              if scheme.lower() == "bearer" and token.strip() else None)
    return cache["brightrun.presented_token"]
