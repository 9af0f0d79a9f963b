"""Named job configurations the team can start new jobs from (``control/services/templates.py``)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from control.extensions import db
from control.models.types import JSONType, UTCDateTime, iso, new_id, utcnow


class JobTemplate(db.Model):
    __tablename__ = "job_templates"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id("tpl"))
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    # What a job request would carry: preset, hyperparameters (overrides), gpu {type, pricing},
    # base_model, method, evaluation, rubric_id, max_cost_usd.
    configuration: Mapped[dict] = mapped_column(JSONType)
    source_job_id: Mapped[str | None] = mapped_column(String(32))   # the job it was saved from, if any
    created_by: Mapped[str] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    def to_dict(self) -> dict:
        return {"id": self.id, "name": self.name, "description": self.description,
                "configuration": self.configuration, "source_job_id": self.source_job_id,
                "created_by": self.created_by, "created_at": iso(self.created_at),
                "updated_at": iso(self.updated_at)}
