"""API tokens: named, with an optional expiry, listed and revoked by their owner (or from
the CLI). Only a token's sha256 is stored; the plain token is shown once, when made. A
revoked or expired token, or one of a deactivated user, is refused at once, saying which."""
from __future__ import annotations

import re
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import joinedload

from control.extensions import db
from control.models import ApiToken, User, hash_token, iso, utcnow
from control.services.exceptions import NotFound

LAST_USED_EVERY_S = 60          # last_used_at is written at most this often
MAX_EXPIRY_DAYS = 3650
_DURATION = re.compile(r"^\s*(\d+)\s*([hdw])\s*$")
_UNIT_HOURS = {"h": 1, "d": 24, "w": 24 * 7}


class TokenRefused(Exception):
    """``code``: ``unauthorized`` (no such token), ``token_revoked``, ``token_expired``,
    ``account_deactivated``; ``message`` says which, and what to do."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


def parse_expires_in(text: str) -> timedelta:
    """``30d``, ``12h``, ``2w``: a lifetime of at least an hour and at most ten years.

    >>> parse_expires_in("30d"), parse_expires_in("12h")
    (datetime.timedelta(days=30), datetime.timedelta(seconds=43200))
    """
    match = _DURATION.match(text or "")
    if not match:
        raise ValueError(f"{text!r} is not a lifetime: write a number and h, d or w (12h, 30d, 2w)")
    hours = int(match.group(1)) * _UNIT_HOURS[match.group(2)]
    if not 1 <= hours <= MAX_EXPIRY_DAYS * 24:
        raise ValueError(f"{text!r}: a token lives between 1 hour and {MAX_EXPIRY_DAYS} days")
    return timedelta(hours=hours)


def create(user: User, name: str | None = None, lifetime: timedelta | None = None,
           not_after: datetime | None = None) -> tuple[ApiToken, str]:
    """A new token for ``user`` (expiring after ``lifetime``, or never, but never after
    ``not_after``: a token made with an expiring token does not outlive it); returns the row
    and the plain token, which is never stored."""
    ends = [t for t in (utcnow() + lifetime if lifetime else None, not_after) if t is not None]
    expires_at = min(ends) if ends else None
    row, plain = ApiToken.issue(user, (name or "").strip() or None, expires_at)
    db.session.add(row)
    db.session.commit()
    return row, plain


def owned_by(user: User) -> list[ApiToken]:
    """The user's tokens, newest first, revoked and expired ones included."""
    return list(db.session.scalars(select(ApiToken).where(ApiToken.user_id == user.id)
                                   .order_by(ApiToken.created_at.desc(), ApiToken.id)))


def revoke(token_id: str, owner: User | None = None) -> ApiToken:
    """Revoke a token now (again: no change). With ``owner``, another user's token is not found."""
    row = db.session.get(ApiToken, token_id) if isinstance(token_id, str) else None
    if row is None or (owner is not None and row.user_id != owner.id):
        raise NotFound("API token", token_id)
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        db.session.commit()
    return row


def status(row: ApiToken) -> str:
    """``active``, ``revoked`` or ``expired``."""
    if row.revoked_at is not None:
        return "revoked"
    if row.expires_at is not None and row.expires_at <= utcnow():
        return "expired"
    return "active"


def find(plain: str) -> ApiToken | None:
    """The token issued as ``plain``, whatever its state, or None."""
    return db.session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(plain))
                             .options(joinedload(ApiToken.user))      # fresh rows: a revocation or
                             .execution_options(populate_existing=True))   # deactivation counts at once


def authenticate(plain: str) -> User:
    """The user this bearer token belongs to, or ``TokenRefused`` naming why not."""
    return check(find(plain))


def check(row: ApiToken | None) -> User:
    """The user of a token found by :func:`find`, or ``TokenRefused`` naming why not."""
    if row is None:
        raise TokenRefused("unauthorized", "invalid or revoked API token: no token issued here matches it; "
                           "create one on the console's API tokens page or with `pipeline tokens create EMAIL`")
    now = utcnow()
    if row.revoked_at is not None:
        raise TokenRefused("token_revoked", f"this API token ({row.display_prefix}…) was revoked at "
                           f"{iso(row.revoked_at)}: create a new one")
    if row.expires_at is not None and row.expires_at <= now:
        raise TokenRefused("token_expired", f"this API token ({row.display_prefix}…) expired at "
                           f"{iso(row.expires_at)}: create a new one")
    if not row.user.is_active:
        raise TokenRefused("account_deactivated", "the account this API token belongs to is deactivated: "
                           "ask an admin (`pipeline users reactivate EMAIL`)")
    if row.last_used_at is None or (now - row.last_used_at).total_seconds() > LAST_USED_EVERY_S:
        row.last_used_at = now
        db.session.commit()
    return row.user
