"""A re-evaluation of a finished job: the ``evaluate`` job kind on the same GPU endpoint,
recorded on the job with its own settings and results (a training run's own evaluation
is on its ``model_artifacts`` row)."""
from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from control.extensions import db
from control.models.types import JSONType, UTCDateTime, iso, new_id, utcnow


class EvaluationStatus(StrEnum):
    QUEUED = "queued"           # recorded; not yet on the endpoint
    RUNNING = "running"         # on the endpoint
    COMPLETED = "completed"
    FAILED = "failed"

    @classmethod
    def active(cls) -> tuple["EvaluationStatus", ...]:
        return (cls.QUEUED, cls.RUNNING)


class EvaluationRun(db.Model):
    __tablename__ = "evaluation_runs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id("ev"))
    training_job_id: Mapped[str] = mapped_column(ForeignKey("training_jobs.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(16), default=EvaluationStatus.QUEUED)
    settings: Mapped[dict] = mapped_column(JSONType)          # size, max_new_tokens, prompts_file_id
    runpod_job_id: Mapped[str | None] = mapped_column(String(128))
    summary: Mapped[dict | None] = mapped_column(JSONType)    # the evaluation event's fields
    judge: Mapped[dict | None] = mapped_column(JSONType)      # the automatic judge's counts, when it ran
    error: Mapped[dict | None] = mapped_column(JSONType)
    created_by: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    job = relationship("TrainingJob")

    def to_dict(self) -> dict:
        return {"id": self.id, "job_id": self.training_job_id, "kind": "re-evaluation",
                "status": self.status, "settings": self.settings, "error": self.error, "judge": self.judge,
                "created_by": self.created_by, "created_at": iso(self.created_at),
                "started_at": iso(self.started_at), "completed_at": iso(self.completed_at)}
