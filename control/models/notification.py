"""What the product tells people: a notice of something that happened, the messages it
becomes (one per recipient and channel, delivered through the outbox), and each user's
preferences.

- ``Notice``: one event worth telling (a job completed, a budget threshold crossed...). It
  is written in the same transaction as the change it reports; ``dedupe_key`` makes "once a
  month" or "once a job" a unique constraint rather than a check.
- ``OutboxMessage``: one (notice, channel, destination), delivered at most once, retried
  with backoff; its state is what the outbox page shows.
- ``NotificationPreference``: which events a user hears of, on which channels, and whether
  they get the daily digest. No row: the defaults (``DEFAULT_EVENTS`` by email).
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from control.extensions import db
from control.models.types import BigId, JSONType, UTCDateTime, iso, utcnow

#: What can happen, as notices and as outgoing webhooks' event types.
NOTICE_KINDS = (
    "job.completed", "job.failed", "job.cancelled", "job.stalled", "job.recovered",
    "job.awaiting_approval", "job.approval_decided", "job.cost_alert", "job.over_estimate",
    "evaluation.ready", "delivery.approved", "delivery.rejected", "budget.threshold", "digest",
)
#: The kinds people choose among in their preferences (the digest has its own switch).
USER_EVENTS = tuple(k for k in NOTICE_KINDS if k != "digest")
DEFAULT_EVENTS = ("job.completed", "job.failed", "job.stalled", "job.recovered",
                  "job.awaiting_approval", "job.approval_decided", "job.cost_alert",
                  "job.over_estimate", "delivery.approved", "delivery.rejected", "budget.threshold")
CHANNELS = ("email", "slack")
OUTBOX_STATES = ("pending", "retrying", "sent", "kept", "dead")   # kept: no provider configured, shown only


class Notice(db.Model):
    __tablename__ = "notices"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(40))
    training_job_id: Mapped[str | None] = mapped_column(ForeignKey("training_jobs.id", ondelete="SET NULL"),
                                                        index=True)
    user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))  # whose it is
    dedupe_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    payload: Mapped[dict] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    fanned_out_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)

    def to_dict(self) -> dict:
        return {"id": self.id, "kind": self.kind, "job_id": self.training_job_id,
                "user_id": self.user_id, "payload": self.payload, "created_at": iso(self.created_at),
                "fanned_out_at": iso(self.fanned_out_at)}


class OutboxMessage(db.Model):
    __tablename__ = "notification_outbox"
    __table_args__ = (UniqueConstraint("notice_id", "channel", "destination", name="uq_outbox_once"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    notice_id: Mapped[int] = mapped_column(ForeignKey("notices.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))  # null: a team channel
    channel: Mapped[str] = mapped_column(String(16))            # email | slack
    destination: Mapped[str] = mapped_column(String(320))       # an address, a Slack channel, "team-webhook"
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[dict] = mapped_column(JSONType, default=dict)  # rendered: text, html, blocks
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    notice: Mapped[Notice] = relationship()

    def to_dict(self) -> dict:
        return {"id": self.id, "notice_id": self.notice_id, "kind": self.notice.kind if self.notice else None,
                "job_id": self.notice.training_job_id if self.notice else None,
                "user_id": self.user_id, "channel": self.channel, "destination": self.destination,
                "subject": self.subject, "status": self.status, "attempts": self.attempts,
                "next_attempt_at": iso(self.next_attempt_at), "last_error": self.last_error,
                "sent_at": iso(self.sent_at), "created_at": iso(self.created_at)}


class NotificationPreference(db.Model):
    __tablename__ = "notification_preferences"

    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    events: Mapped[list] = mapped_column(JSONType, default=lambda: list(DEFAULT_EVENTS))
    channels: Mapped[list] = mapped_column(JSONType, default=lambda: ["email"])
    slack_channel: Mapped[str | None] = mapped_column(String(80))   # with SLACK_BOT_TOKEN: where theirs go
    digest: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    def to_dict(self) -> dict:
        return {"events": list(self.events), "channels": list(self.channels),
                "slack_channel": self.slack_channel, "digest": self.digest,
                "updated_at": iso(self.updated_at)}
