"""What goes to a client: the validation report's versions and the share links to it.

- ``ValidationReport``: one rendered PDF, kept in storage; a new version is built when the
  evaluation lands and again when reviews or the decision change what it says.
- ``ShareLink``: a read-only public link to the report. Its token (at least 128 bits) is
  shown once and stored as a sha256 hash; it expires (1 to 90 days) and can be revoked.
"""
from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from sqlalchemy import Float, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from control.extensions import db
from control.models.types import BigId, UTCDateTime, iso, new_id, utcnow

SHARE_TOKEN_BYTES = 24     # 192 bits


def hash_share_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class ValidationReport(db.Model):
    __tablename__ = "validation_reports"
    __table_args__ = (UniqueConstraint("training_job_id", "version", name="uq_validation_reports_version"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    training_job_id: Mapped[str] = mapped_column(ForeignKey("training_jobs.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    storage_key: Mapped[str] = mapped_column(String(512))
    size_bytes: Mapped[int] = mapped_column(Integer)
    fingerprint: Mapped[str] = mapped_column(String(64))     # of what it says; the same content is not rebuilt
    trigger: Mapped[str] = mapped_column(String(32))         # evaluation | reviews | decision | request
    build_seconds: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def to_dict(self) -> dict:
        return {"version": self.version, "size_bytes": self.size_bytes, "trigger": self.trigger,
                "build_seconds": round(self.build_seconds, 2), "created_at": iso(self.created_at)}


class ShareLink(db.Model):
    __tablename__ = "share_links"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id("shr"))
    training_job_id: Mapped[str] = mapped_column(ForeignKey("training_jobs.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_by: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    view_count: Mapped[int] = mapped_column(Integer, default=0)
    last_viewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    creator = relationship("User")

    @classmethod
    def issue(cls, job_id: str, user_id: str, expires_at: datetime) -> tuple["ShareLink", str]:
        """A new link; the plain token is returned once and never stored."""
        plain = secrets.token_urlsafe(SHARE_TOKEN_BYTES)
        return cls(training_job_id=job_id, created_by=user_id, token_hash=hash_share_token(plain),
                   expires_at=expires_at), plain

    def state(self, now: datetime | None = None) -> str:
        now = now or utcnow()
        if self.revoked_at is not None:
            return "revoked"
        return "expired" if self.expires_at <= now else "active"

    def to_dict(self) -> dict:
        return {"id": self.id, "job_id": self.training_job_id, "state": self.state(),
                "created_by": self.created_by, "created_at": iso(self.created_at),
                "expires_at": iso(self.expires_at), "revoked_at": iso(self.revoked_at),
                "views": self.view_count, "last_viewed_at": iso(self.last_viewed_at)}
