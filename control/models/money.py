"""The team's monthly budget and its alert thresholds (one row, ``id = "team"``). What was
spent is read from the jobs; that a threshold alerted this month is a notice's dedupe key."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from control.extensions import db
from control.models.types import JSONType, UTCDateTime, iso, utcnow

DEFAULT_LIMIT_USD = 500.0
#: The documents' alerts: 80% by email, 95% by email and Slack.
DEFAULT_ALERTS = ({"percent": 80, "channels": ["email"]}, {"percent": 95, "channels": ["email", "slack"]})


class BudgetSetting(db.Model):
    __tablename__ = "budget_settings"

    id: Mapped[str] = mapped_column(String(16), primary_key=True, default="team")
    limit_usd: Mapped[float] = mapped_column(Float, default=DEFAULT_LIMIT_USD)
    alerts: Mapped[list] = mapped_column(JSONType, default=lambda: [dict(a) for a in DEFAULT_ALERTS])
    recipients: Mapped[list] = mapped_column(JSONType, default=list)   # emails; empty: the admins
    updated_by: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    def to_dict(self) -> dict:
        return {"limit_usd": self.limit_usd, "alerts": self.alerts, "recipients": self.recipients,
                "updated_by": self.updated_by, "updated_at": iso(self.updated_at)}
