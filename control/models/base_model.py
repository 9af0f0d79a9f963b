"""Base models an admin registered, beside ``embedded`` and the configured hub ids: a job may
train only on one of these (``control/services/base_models.py``)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from control.extensions import db
from control.models.types import UTCDateTime, iso, new_id, utcnow


class RegisteredBaseModel(db.Model):
    __tablename__ = "base_models"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id("bm"))
    name: Mapped[str] = mapped_column(String(255), unique=True)     # a hub id, e.g. org/model
    description: Mapped[str | None] = mapped_column(Text)
    added_by: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def to_dict(self) -> dict:
        return {"id": self.id, "name": self.name, "description": self.description,
                "added_by": self.added_by, "created_at": iso(self.created_at)}
