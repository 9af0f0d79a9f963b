"""People, their API tokens and their console sessions. Tokens and session ids are stored as
sha256 hashes only; a token is shown once."""
from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from control.extensions import db
from control.models.types import UTCDateTime, iso, new_id, utcnow

ROLES = ("admin", "engineer", "reviewer")   # a reviewer is an engineer who also scores and approves
TOKEN_PREFIX = "brt_"
MIN_PASSWORD_LENGTH = 10


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class User(db.Model):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id("usr"))
    email: Mapped[str] = mapped_column(String(320), unique=True)
    role: Mapped[str] = mapped_column(String(16), default="engineer")
    password_hash: Mapped[str | None] = mapped_column(String(255))   # console login; null: none yet
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    deactivated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # set: no session or token works

    tokens: Mapped[list["ApiToken"]] = relationship(back_populates="user", cascade="all, delete-orphan")
    sessions: Mapped[list["ConsoleSession"]] = relationship(back_populates="user", cascade="all, delete-orphan")

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def can_review(self) -> bool:
        """Blind review and delivery decisions: reviewers and admins."""
        return self.role in ("admin", "reviewer")

    @property
    def is_active(self) -> bool:
        return self.deactivated_at is None

    def set_password(self, password: str) -> None:
        """Store a salted scrypt hash; refuses passwords shorter than ``MIN_PASSWORD_LENGTH``."""
        if len(password) < MIN_PASSWORD_LENGTH:
            raise ValueError(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
        self.password_hash = generate_password_hash(password)

    def check_password(self, password: str) -> bool:
        return bool(self.password_hash) and check_password_hash(self.password_hash, password)


class ApiToken(db.Model):
    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id("tok"))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    display_prefix: Mapped[str] = mapped_column(String(16))
    name: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)    # null: until revoked

    user: Mapped[User] = relationship(back_populates="tokens")

    @classmethod
    def issue(cls, user: User, name: str | None = None,
              expires_at: datetime | None = None) -> tuple["ApiToken", str]:
        """A new token for ``user``; the plain token is returned once and never stored."""
        plain = TOKEN_PREFIX + secrets.token_urlsafe(32)
        return cls(user=user, token_hash=hash_token(plain), display_prefix=plain[:10], name=name,
                   expires_at=expires_at), plain

    def is_valid(self, now: datetime | None = None) -> bool:
        """Not revoked, not expired, and its user not deactivated."""
        now = now or utcnow()
        return (self.revoked_at is None and (self.expires_at is None or self.expires_at > now)
                and self.user.is_active)

    def to_dict(self) -> dict:
        return {"id": self.id, "name": self.name, "prefix": self.display_prefix,
                "created_at": iso(self.created_at), "last_used_at": iso(self.last_used_at),
                "expires_at": iso(self.expires_at), "revoked_at": iso(self.revoked_at)}


class ConsoleSession(db.Model):
    """A signed-in console session, kept on the server: the cookie carries only its random id
    (stored here as a sha256), so signing out, a password change or a deactivation ends it at
    once, whatever copies of the cookie exist."""

    __tablename__ = "console_sessions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id("ses"))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    client_address: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(255))

    user: Mapped[User] = relationship(back_populates="sessions")

    def is_valid(self, now: datetime | None = None) -> bool:
        now = now or utcnow()
        return self.revoked_at is None and self.expires_at > now and self.user.is_active


class PasswordLink(db.Model):
    """A one-time link to set a password, made by an admin for a new user (or one who forgot);
    only its sha256 is stored, it works once, and it expires."""

    __tablename__ = "password_links"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id("pwl"))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_by: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def is_valid(self, now: datetime | None = None) -> bool:
        now = now or utcnow()
        return self.used_at is None and self.revoked_at is None and self.expires_at > now
