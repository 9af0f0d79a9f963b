"""One-time set-password links (``PasswordLink``): an admin makes one for a new user (or one
who forgot); the person opens it and chooses a password. No email is needed: the admin is
shown the link once and hands it over.

- The token carries 256 random bits; only its sha256 is stored, so the table cannot hand out
  working links.
- A link expires after ``LIFETIME`` (72 hours), works once, and a newer link for the same
  user revokes the older ones.
- Using it sets the password, signs out every session of the user (as a password change
  does), and lifts the sign-in throttle on their email. Of two uses at once, one wins: the
  claim is a conditional ``UPDATE``.
"""
from __future__ import annotations

import secrets
from datetime import timedelta

from sqlalchemy import select, update

from control.extensions import db
from control.models import PasswordLink, User, hash_token, utcnow
from control.models.user import MIN_PASSWORD_LENGTH
from control.services import audit, sessions, sign_in_throttle

LIFETIME = timedelta(hours=72)
TOKEN_BYTES = 32
MAX_TOKEN_LENGTH = 128          # a path segment longer than any token issued here is no token


class LinkRefused(Exception):
    """``reason``: ``unknown`` (no such link), ``used``, ``expired``, ``revoked``,
    ``deactivated`` (the account); ``message`` says which, and what to do."""

    MESSAGES = {
        "unknown": "This set-password link is not valid: check that it was copied whole, or ask an admin "
                   "for a new one.",
        "used": "This set-password link has been used already: it works once. Sign in with the password "
                "you chose, or ask an admin for a new link.",
        "expired": "This set-password link has expired (links last 72 hours). Ask an admin for a new one.",
        "revoked": "This set-password link was replaced by a newer one. Use the newest link, or ask an "
                   "admin for a new one.",
        "deactivated": "This account is deactivated, so its password cannot be set. Ask an admin to "
                       "reactivate it.",
    }

    def __init__(self, reason: str):
        super().__init__(self.MESSAGES[reason])
        self.reason, self.message = reason, self.MESSAGES[reason]


def live_links(user: User) -> list[PasswordLink]:
    """The user's links that still work, newest first."""
    now = utcnow()
    return list(db.session.scalars(select(PasswordLink).where(
        PasswordLink.user_id == user.id, PasswordLink.used_at.is_(None), PasswordLink.revoked_at.is_(None),
        PasswordLink.expires_at > now).order_by(PasswordLink.created_at.desc())))


def issue(user: User, by: User | None) -> tuple[PasswordLink, str]:
    """A new link for ``user``, made by ``by``; the user's older live links are revoked.
    Returns the row and the plain token (shown once, never stored). The caller commits."""
    now = utcnow()
    for older in live_links(user):
        older.revoked_at = now
    token = secrets.token_urlsafe(TOKEN_BYTES)
    link = PasswordLink(user_id=user.id, token_hash=hash_token(token), created_by=by.id if by else None,
                        created_at=now, expires_at=now + LIFETIME)
    db.session.add(link)
    db.session.flush()
    audit.record("user.password_link_created", actor=by, target_type="user", target_id=user.id,
                 details={"email": user.email, "link_id": link.id, "expires_at": link.expires_at.isoformat()})
    return link, token


def state(link: PasswordLink, now=None) -> str:
    """``active``, ``used``, ``revoked`` or ``expired``."""
    now = now or utcnow()
    if link.used_at is not None:
        return "used"
    if link.revoked_at is not None:
        return "revoked"
    if link.expires_at <= now:
        return "expired"
    return "active"


def find(token: str | None) -> tuple[PasswordLink, User]:
    """The live link behind ``token`` and its user, or ``LinkRefused`` saying why not."""
    if not token or not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH:
        raise LinkRefused("unknown")
    link = db.session.scalar(select(PasswordLink).where(PasswordLink.token_hash == hash_token(token))
                             .execution_options(populate_existing=True))
    if link is None:
        raise LinkRefused("unknown")
    current = state(link)
    if current != "active":
        raise LinkRefused(current)
    user = db.session.get(User, link.user_id, populate_existing=True)
    if user is None:
        raise LinkRefused("unknown")
    if not user.is_active:
        raise LinkRefused("deactivated")
    return link, user


def use(token: str | None, password: str) -> User:
    """Set the password of the link's user (``ValueError`` when shorter than
    ``MIN_PASSWORD_LENGTH``; the link still works then), end their sessions, and spend the
    link. ``LinkRefused`` when it does not work (used, expired, revoked, unknown). Commits."""
    link, user = find(token)
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
    now = utcnow()
    claimed = db.session.execute(update(PasswordLink).where(
        PasswordLink.id == link.id, PasswordLink.used_at.is_(None), PasswordLink.revoked_at.is_(None))
        .values(used_at=now)).rowcount
    if not claimed:                       # another use won meanwhile
        db.session.rollback()
        raise LinkRefused("used")
    user.set_password(password)
    sessions.end_all(user)
    audit.record("user.password_set", actor=user, target_type="user", target_id=user.id,
                 details={"email": user.email, "link_id": link.id})
    db.session.commit()
    sign_in_throttle.forget_email(user.email)
    return user
