"""What a job leaves behind: its event log, its metrics history and its artifacts."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Float, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from control.extensions import db
from control.models.types import BigId, JSONType, UTCDateTime, iso, utcnow


class TrainingEvent(db.Model):
    """The event log: every event a handler yielded, stored once per (job, attempt, seq)."""

    __tablename__ = "training_webhook_events"
    __table_args__ = (UniqueConstraint("training_job_id", "attempt", "seq", name="uq_event_job_attempt_seq"),
                      Index("ix_events_job_id_id", "training_job_id", "id"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    training_job_id: Mapped[str] = mapped_column(ForeignKey("training_jobs.id", ondelete="CASCADE"))
    attempt: Mapped[int] = mapped_column(Integer)
    seq: Mapped[int] = mapped_column(BigInteger)
    type: Mapped[str] = mapped_column(String(24))
    ts: Mapped[str] = mapped_column(String(40))
    payload: Mapped[dict] = mapped_column(JSONType)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def to_dict(self) -> dict:
        return {"id": self.id, "attempt": self.attempt, "seq": self.seq, "type": self.type,
                "ts": self.ts, "received_at": iso(self.received_at), "event": self.payload}


METRIC_FIELDS = ("step", "epoch", "training_loss", "validation_loss", "learning_rate",
                 "gradient_norm", "perplexity", "tokens_per_second", "samples_per_second",
                 "gpu_memory_gb", "gpu_utilization", "elapsed_seconds", "eta_seconds")


class MetricPoint(db.Model):
    """One optimizer step's metrics. A resumed attempt re-runs steps: the latest wins."""

    __tablename__ = "training_metrics_history"
    __table_args__ = (UniqueConstraint("training_job_id", "step", name="uq_metrics_job_step"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    training_job_id: Mapped[str] = mapped_column(ForeignKey("training_jobs.id", ondelete="CASCADE"))
    attempt: Mapped[int] = mapped_column(Integer)
    step: Mapped[int] = mapped_column(Integer)
    epoch: Mapped[float | None] = mapped_column(Float)
    training_loss: Mapped[float | None] = mapped_column(Float)
    validation_loss: Mapped[float | None] = mapped_column(Float)
    learning_rate: Mapped[float | None] = mapped_column(Float)
    gradient_norm: Mapped[float | None] = mapped_column(Float)
    perplexity: Mapped[float | None] = mapped_column(Float)
    tokens_per_second: Mapped[float | None] = mapped_column(Float)
    samples_per_second: Mapped[float | None] = mapped_column(Float)
    gpu_memory_gb: Mapped[float | None] = mapped_column(Float)
    gpu_utilization: Mapped[float | None] = mapped_column(Float)
    elapsed_seconds: Mapped[float | None] = mapped_column(Float)
    eta_seconds: Mapped[float | None] = mapped_column(Float)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def to_dict(self) -> dict:
        return {f: getattr(self, f) for f in METRIC_FIELDS}


class ModelArtifact(db.Model):
    """A job's outputs and their scores, one row a job (the documents' model_artifacts)."""

    __tablename__ = "model_artifacts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    training_job_id: Mapped[str] = mapped_column(ForeignKey("training_jobs.id", ondelete="CASCADE"), unique=True)
    adapter_path: Mapped[str | None] = mapped_column(String(512))
    adapter_size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    config_path: Mapped[str | None] = mapped_column(String(512))
    metrics_path: Mapped[str | None] = mapped_column(String(512))
    summary_path: Mapped[str | None] = mapped_column(String(512))
    validation_report_path: Mapped[str | None] = mapped_column(String(512))
    evaluation: Mapped[dict | None] = mapped_column(JSONType)      # the training run's evaluation event
    judge: Mapped[dict | None] = mapped_column(JSONType)           # the automatic judge's counts, when it ran
    base_perplexity: Mapped[float | None] = mapped_column(Float)
    trained_perplexity: Mapped[float | None] = mapped_column(Float)
    perplexity_improvement_pct: Mapped[float | None] = mapped_column(Float)
    base_ei_score: Mapped[float | None] = mapped_column(Float)
    trained_ei_score: Mapped[float | None] = mapped_column(Float)
    forgetting_retention: Mapped[float | None] = mapped_column(Float)
    brand_voice_consistency: Mapped[float | None] = mapped_column(Float)
    deployment_package_path: Mapped[str | None] = mapped_column(String(512))
    download_count: Mapped[int] = mapped_column(Integer, default=0)
    last_downloaded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def to_dict(self) -> dict:
        out = {c: getattr(self, c) for c in (
            "adapter_path", "adapter_size_bytes", "config_path", "metrics_path", "summary_path",
            "validation_report_path", "evaluation", "base_perplexity", "trained_perplexity",
            "perplexity_improvement_pct", "base_ei_score", "trained_ei_score",
            "forgetting_retention", "brand_voice_consistency", "deployment_package_path",
            "download_count")}
        out["last_downloaded_at"] = iso(self.last_downloaded_at)
        out["created_at"] = iso(self.created_at)
        return out
