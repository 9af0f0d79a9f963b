"""The API's request rate, per token: ``API_RATE_LIMIT`` (Flask-Limiter, counted in the app's
Redis) over every route under ``/api`` together, keyed by the presented token (its id), or by
the client's address for a request without a token issued here. Signed download links are
not counted (they carry no token and are handed out by the API itself), nor is the console,
which has its own sign-in throttle. Over the limit: 429 with ``Retry-After`` and the limit named."""
from __future__ import annotations

import math
import time

import limits
from flask import current_app, request
from flask_limiter import Limiter, RateLimitExceeded

from control.api.blueprint import bp
from control.api.errors import error_response
from control.api.auth import presented_token

NOT_COUNTED = {"api.signed_download"}


def key() -> str:
    """Whose requests these are: a token issued here (by its id), else the client's address,
    so made-up tokens share their sender's budget instead of each getting one."""
    row = presented_token()
    if row is not None:
        return "token:" + row.id
    return "address:" + (request.remote_addr or "-")


def _limit() -> str:
    return current_app.config["API_RATE_LIMIT"]


def _not_counted() -> bool:
    return request.endpoint in NOT_COUNTED


def limit_api(limiter: Limiter, configured: str) -> None:
    """Put ``API_RATE_LIMIT`` on the API blueprint, one budget for all its routes; a value
    that is no rate (``600 per minute``, ``10/second``) fails the start, named."""
    try:
        limits.parse_many(configured)
    except ValueError:
        raise ValueError(f"API_RATE_LIMIT: {configured!r} is not a rate limit; write it as "
                         "'600 per minute' or '10/second'") from None
    limiter.shared_limit(_limit, scope="api", key_func=key, exempt_when=_not_counted)(bp)


@bp.errorhandler(RateLimitExceeded)
def _too_many(exc: RateLimitExceeded):
    limiter = current_app.extensions.get("brightrun.limiter")
    current = limiter.current_limit if limiter is not None else None
    window = int(exc.limit.limit.get_expiry())
    left = current.reset_at - time.time() if current is not None else window
    wait = max(1, min(window, math.ceil(left)))        # the counter's clock rounds up a second
    body, status = error_response(
        429, "rate_limited", f"too many requests: the limit (API_RATE_LIMIT) is {exc.limit.limit} "
        f"for each API token; try again in {wait} s")
    body.headers["Retry-After"] = str(wait)
    return body, status
