"""Console sessions, kept on the server (``ConsoleSession``).

Signing in makes a row with a random token; only the token's sha256 is stored, and the
cookie carries only the token, nothing derived from the password. Every request looks the
row up: a revoked, expired or deactivated user's session is no session. Signing out revokes
the row at once, so a copy of the cookie taken before is worth nothing afterwards.
"""
from __future__ import annotations

import secrets
from datetime import timedelta

from flask import current_app
from sqlalchemy import delete, select, update
from sqlalchemy.orm import joinedload

from control.extensions import db
from control.models import ConsoleSession, User, hash_token, utcnow

LAST_SEEN_EVERY_S = 60         # last_seen_at is written at most this often


def start(user: User, client_address: str | None = None, user_agent: str | None = None) -> str:
    """A new session for ``user``; returns the token for the cookie (never stored)."""
    now = utcnow()
    db.session.execute(delete(ConsoleSession).where(ConsoleSession.user_id == user.id,
                                                    ConsoleSession.expires_at < now))
    token = secrets.token_urlsafe(32)
    db.session.add(ConsoleSession(
        user=user, token_hash=hash_token(token), created_at=now, last_seen_at=now,
        expires_at=now + current_app.permanent_session_lifetime,
        client_address=(client_address or "")[:64] or None, user_agent=(user_agent or "")[:255] or None))
    db.session.commit()
    return token


def find(token: str | None) -> ConsoleSession | None:
    """The live session for this cookie token (not revoked, not expired, its user active), or None."""
    if not token or not isinstance(token, str):
        return None
    row = db.session.scalar(select(ConsoleSession).where(ConsoleSession.token_hash == hash_token(token))
                            .options(joinedload(ConsoleSession.user))     # fresh rows: a revocation or
                            .execution_options(populate_existing=True))   # deactivation counts at once
    now = utcnow()
    if row is None or not row.is_valid(now):
        return None
    if row.last_seen_at is None or now - row.last_seen_at > timedelta(seconds=LAST_SEEN_EVERY_S):
        row.last_seen_at = now
        db.session.commit()
    return row


def end(token: str | None) -> None:
    """Sign out: the session is revoked now, whoever holds a copy of the cookie."""
    if not token or not isinstance(token, str):
        return
    db.session.execute(update(ConsoleSession)
                       .where(ConsoleSession.token_hash == hash_token(token),
                              ConsoleSession.revoked_at.is_(None))
                       .values(revoked_at=utcnow()))
    db.session.commit()


def end_all(user: User, keep: ConsoleSession | None = None) -> int:
    """Revoke every live session of ``user`` but ``keep``; returns how many. The caller commits."""
    query = update(ConsoleSession).where(ConsoleSession.user_id == user.id,
                                         ConsoleSession.revoked_at.is_(None))
    if keep is not None:
        query = query.where(ConsoleSession.id != keep.id)
    return db.session.execute(query.values(revoked_at=utcnow())).rowcount


def live_for(user: User) -> list[ConsoleSession]:
    """The user's sessions that still work, newest first."""
    rows = db.session.scalars(select(ConsoleSession).where(ConsoleSession.user_id == user.id,
                                                           ConsoleSession.revoked_at.is_(None),
                                                           ConsoleSession.expires_at > utcnow())
                              .order_by(ConsoleSession.created_at.desc()))
    return list(rows)
