"""Training jobs (named as in the product documents) and their attempts on the GPU endpoint."""
from __future__ import annotations

import secrets
from datetime import datetime

from sqlalchemy import BigInteger, Boolean, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from control.extensions import db
from control.models.job_status import AttemptOutcome, JobStatus
from control.models.types import JSONType, UTCDateTime, iso, new_id, utcnow
from shared.storage.layout import JobLayout


class TrainingJob(db.Model):
    __tablename__ = "training_jobs"
    __table_args__ = (Index("ix_training_jobs_created_by_created_at", "created_by", "created_at"),
                      Index("ix_training_jobs_status", "status"))

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id("tj"))
    training_file_id: Mapped[str] = mapped_column(ForeignKey("training_files.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    notes: Mapped[str | None] = mapped_column(Text)
    tags: Mapped[list] = mapped_column(JSONType, default=list)
    configuration: Mapped[dict] = mapped_column(JSONType)   # hyperparameters, gpu, base model, method
    preset: Mapped[str] = mapped_column(String(32))
    base_model: Mapped[str] = mapped_column(String(255))
    method: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(24), default=JobStatus.PENDING)
    current_stage: Mapped[str | None] = mapped_column(String(24))
    progress_percentage: Mapped[float] = mapped_column(Float, default=0.0)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cost_estimate: Mapped[float | None] = mapped_column(Float)
    actual_cost: Mapped[float] = mapped_column(Float, default=0.0)
    estimated_duration_minutes: Mapped[float | None] = mapped_column(Float)
    actual_duration_minutes: Mapped[float | None] = mapped_column(Float)
    runpod_job_id: Mapped[str | None] = mapped_column(String(128))
    gpu_type: Mapped[str] = mapped_column(String(32))
    gpu_pricing_tier: Mapped[str] = mapped_column(String(16))
    current_epoch: Mapped[float | None] = mapped_column(Float)
    current_step: Mapped[int | None] = mapped_column(Integer)
    total_steps: Mapped[int | None] = mapped_column(Integer)
    latest_loss: Mapped[float | None] = mapped_column(Float)
    latest_learning_rate: Mapped[float | None] = mapped_column(Float)
    latest_perplexity: Mapped[float | None] = mapped_column(Float)
    estimated_time_remaining_minutes: Mapped[float | None] = mapped_column(Float)
    error_message: Mapped[str | None] = mapped_column(Text)
    error_type: Mapped[str | None] = mapped_column(String(32))
    error_fix: Mapped[str | None] = mapped_column(Text)
    error_cause: Mapped[str | None] = mapped_column(Text)
    error_user: Mapped[bool | None] = mapped_column(Boolean)          # the user's to fix, or the platform's
    error_adjustment: Mapped[dict | None] = mapped_column(JSONType)   # what a retry changes
    stalled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    checkpoint_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    retried_from_id: Mapped[str | None] = mapped_column(String(32))
    template_id: Mapped[str | None] = mapped_column(String(32), index=True)   # the template it started from
    # The newest evaluation's perplexity gain (%, + is better), kept here so the list sorts,
    # filters and trends by it in SQL; written when an evaluation's summary is stored.
    perplexity_gain_pct: Mapped[float | None] = mapped_column(Float)
    rubric_id: Mapped[str | None] = mapped_column(ForeignKey("rubrics.id"))   # null: the documents' rubric
    delivery_status: Mapped[str | None] = mapped_column(String(16), index=True)  # the newest decision
    # Money (control/services/budgets.py, spend.py, approvals.py).
    max_cost_usd: Mapped[float | None] = mapped_column(Float)          # the spend cap; null: none
    projected_cost_usd: Mapped[float | None] = mapped_column(Float)    # while it runs: the final cost it heads for
    cost_alerts: Mapped[list | None] = mapped_column(JSONType, default=list)  # "80", "95", "over_estimate": each once
    budget_override: Mapped[dict | None] = mapped_column(JSONType)     # an admin's {"reason", "by", "at"}
    approval: Mapped[dict | None] = mapped_column(JSONType)            # {"state", "by", "at", "reason"}
    stop_request: Mapped[dict | None] = mapped_column(JSONType)        # asked to checkpoint and stop: {"type", "message", "at"}
    retry_count: Mapped[int] = mapped_column(Integer, default=0)
    checkpoint_recovery_count: Mapped[int] = mapped_column(Integer, default=0)
    last_checkpoint_step: Mapped[int | None] = mapped_column(Integer)
    storage_prefix: Mapped[str] = mapped_column(String(255))
    last_event_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    attempts: Mapped[list["JobAttempt"]] = relationship(
        back_populates="job", order_by="JobAttempt.number", cascade="all, delete-orphan")

    @property
    def is_final(self) -> bool:
        return self.status in JobStatus.FINAL

    @property
    def layout(self) -> JobLayout:
        """Where the job's files are in object storage."""
        return JobLayout(self.storage_prefix)

    @property
    def current_attempt(self) -> "JobAttempt | None":
        return self.attempts[-1] if self.attempts else None

    def elapsed_minutes(self, now: datetime | None = None) -> float | None:
        if not self.started_at:
            return None
        end = self.completed_at or now or utcnow()
        return round((end - self.started_at).total_seconds() / 60, 2)

    def to_dict(self) -> dict:
        return {
            "id": self.id, "training_file_id": self.training_file_id, "name": self.name,
            "description": self.description, "notes": self.notes, "tags": self.tags or [],
            "configuration": self.configuration, "preset": self.preset,
            "base_model": self.base_model, "method": self.method,
            "status": self.status, "current_stage": self.current_stage,
            "progress_percentage": round(self.progress_percentage or 0.0, 2),
            "started_at": iso(self.started_at), "completed_at": iso(self.completed_at),
            "cost_estimate": self.cost_estimate, "actual_cost": round(self.actual_cost or 0.0, 4),
            "estimated_duration_minutes": self.estimated_duration_minutes,
            "actual_duration_minutes": self.actual_duration_minutes,
            "elapsed_minutes": self.elapsed_minutes(),
            "runpod_job_id": self.runpod_job_id, "gpu_type": self.gpu_type,
            "gpu_pricing_tier": self.gpu_pricing_tier, "current_epoch": self.current_epoch,
            "current_step": self.current_step, "total_steps": self.total_steps,
            "latest_loss": self.latest_loss, "latest_learning_rate": self.latest_learning_rate,
            "latest_perplexity": self.latest_perplexity,
            "estimated_time_remaining_minutes": self.estimated_time_remaining_minutes,
            "error_message": self.error_message, "error_type": self.error_type,
            "error_fix": self.error_fix, "error_cause": self.error_cause,
            "error_user": self.error_user, "error_adjustment": self.error_adjustment,
            "stalled_at": iso(self.stalled_at),
            "checkpoint_requested_at": iso(self.checkpoint_requested_at),
            "retried_from_id": self.retried_from_id, "template_id": self.template_id,
            "perplexity_gain_pct": self.perplexity_gain_pct,
            "retry_count": self.retry_count,
            "rubric_id": self.rubric_id, "delivery_status": self.delivery_status,
            "max_cost_usd": self.max_cost_usd, "projected_cost_usd": self.projected_cost_usd,
            "cost_alerts": list(self.cost_alerts or []), "budget_override": self.budget_override,
            "approval": self.approval,
            "checkpoint_recovery_count": self.checkpoint_recovery_count,
            "interruptions": [i for i in (a.interruption() for a in self.attempts) if i],
            "last_checkpoint_step": self.last_checkpoint_step,
            "attempts": len(self.attempts),
            "created_by": self.created_by, "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
        }


class JobAttempt(db.Model):
    """One dispatch of a job to the GPU endpoint; a lost worker means a new attempt."""

    __tablename__ = "training_job_attempts"
    __table_args__ = (UniqueConstraint("training_job_id", "number"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id("att"))
    training_job_id: Mapped[str] = mapped_column(ForeignKey("training_jobs.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    runpod_job_id: Mapped[str | None] = mapped_column(String(128))
    runpod_status: Mapped[str | None] = mapped_column(String(24))
    dispatched_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_event_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    events_received: Mapped[int] = mapped_column(Integer, default=0)
    outcome: Mapped[str | None] = mapped_column(String(24))
    error: Mapped[dict | None] = mapped_column(JSONType)
    monitored_at: Mapped[datetime | None] = mapped_column(UTCDateTime)    # the last stream read
    monitor_token: Mapped[str | None] = mapped_column(String(32))         # the one monitor chain that reads it
    resumed_from_step: Mapped[int | None] = mapped_column(Integer)
    last_step: Mapped[int | None] = mapped_column(Integer)                # the last step it reported
    steps_lost: Mapped[int | None] = mapped_column(Integer)               # steps since its last checkpoint
    # What RunPod billed (its /status executionTime and delayTime), or the local endpoint's.
    execution_ms: Mapped[int | None] = mapped_column(BigInteger)
    delay_ms: Mapped[int | None] = mapped_column(BigInteger)
    webhook_token_hash: Mapped[str | None] = mapped_column(String(64))   # RunPod's completion call proves it with the token

    job: Mapped[TrainingJob] = relationship(back_populates="attempts")

    def running_seconds(self, now: datetime | None = None) -> float:
        if not self.started_at:
            return 0.0
        return max(0.0, ((self.ended_at or now or utcnow()) - self.started_at).total_seconds())

    @staticmethod
    def new_monitor_token() -> str:
        """A token for the one monitor chain that may read this attempt's stream."""
        return secrets.token_hex(8)

    def interruption(self) -> dict | None:
        """When this attempt was interrupted and what it cost, if it was."""
        if self.outcome not in AttemptOutcome.INTERRUPTIONS:
            return None
        return {"attempt": self.number, "at": iso(self.ended_at), "outcome": self.outcome,
                "last_step": self.last_step, "steps_lost": self.steps_lost,
                "reason": (self.error or {}).get("message")}

    def to_dict(self) -> dict:
        return {"number": self.number, "runpod_job_id": self.runpod_job_id,
                "runpod_status": self.runpod_status, "dispatched_at": iso(self.dispatched_at),
                "started_at": iso(self.started_at), "ended_at": iso(self.ended_at),
                "events_received": self.events_received, "outcome": self.outcome,
                "resumed_from_step": self.resumed_from_step, "last_step": self.last_step,
                "steps_lost": self.steps_lost, "error": self.error,
                "execution_ms": self.execution_ms, "delay_ms": self.delay_ms}
