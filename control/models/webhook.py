"""Outgoing webhooks: the URLs a user registered for job events, and every delivery to them.

The signing secret (Standard Webhooks' ``whsec_…``) is shown once, when the endpoint is
made; it is kept encrypted with the app's secret key, since signing needs it back."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from control.extensions import db
from control.models.types import BigId, JSONType, UTCDateTime, iso, new_id, utcnow

WEBHOOK_EVENTS = ("job.completed", "job.failed", "job.cancelled", "job.stalled", "evaluation.ready")
DELIVERY_STATES = ("pending", "retrying", "delivered", "dead")


class WebhookEndpoint(db.Model):
    __tablename__ = "webhook_endpoints"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id("whk"))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(String(2048))
    events: Mapped[list] = mapped_column(JSONType, default=lambda: list(WEBHOOK_EVENTS))
    description: Mapped[str | None] = mapped_column(String(200))
    secret_encrypted: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def to_dict(self) -> dict:
        return {"id": self.id, "url": self.url, "events": list(self.events),
                "description": self.description, "created_at": iso(self.created_at),
                "deleted_at": iso(self.deleted_at)}


class WebhookDelivery(db.Model):
    __tablename__ = "webhook_deliveries"
    __table_args__ = (UniqueConstraint("endpoint_id", "notice_id", name="uq_webhook_delivery_once"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    endpoint_id: Mapped[str] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), index=True)
    notice_id: Mapped[int] = mapped_column(ForeignKey("notices.id", ondelete="CASCADE"))
    event_type: Mapped[str] = mapped_column(String(40))
    message_id: Mapped[str] = mapped_column(String(40), unique=True)   # webhook-id: the receiver's dedupe key
    payload: Mapped[dict] = mapped_column(JSONType)
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    response_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    endpoint: Mapped[WebhookEndpoint] = relationship()

    def to_dict(self) -> dict:
        return {"id": self.id, "message_id": self.message_id, "event_type": self.event_type,
                "status": self.status, "attempts": self.attempts,
                "next_attempt_at": iso(self.next_attempt_at), "response_status": self.response_status,
                "last_error": self.last_error, "delivered_at": iso(self.delivered_at),
                "created_at": iso(self.created_at)}
