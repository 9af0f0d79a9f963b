"""The event contract (handler -> control plane), defined once.

Every event carries ``job_id``, ``attempt``, ``seq`` (monotonic per attempt), ``ts`` and
``type``. The control plane stores them idempotently by (job_id, attempt, seq).
Only the ``error`` event has an ``error`` key: RunPod ends a job as failed when a yielded
dict has a truthy ``error``.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

STAGES = ("preprocessing", "model_loading", "training", "evaluating", "finalizing")
Stage = Literal["preprocessing", "model_loading", "training", "evaluating", "finalizing"]


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid")
    job_id: str
    attempt: Annotated[int, Field(ge=1)]
    seq: Annotated[int, Field(ge=0)]
    ts: str


class StageEvent(_Event):
    type: Literal["stage"] = "stage"
    stage: Stage
    message: str | None = None
    resumed_from_step: int | None = None     # training: the checkpoint this run continues from


class MetricsEvent(_Event):
    type: Literal["metrics"] = "metrics"
    step: int
    total_steps: int
    epoch: float
    loss: float
    lr: float
    grad_norm: float | None = None
    tokens_per_second: float | None = None
    gpu_memory_gb: float | None = None
    elapsed_seconds: float | None = None
    eta_seconds: float | None = None
    val_loss: float | None = None          # on a sample of the held-out split, every evaluation.every_steps
    val_perplexity: float | None = None


class CheckpointEvent(_Event):
    type: Literal["checkpoint"] = "checkpoint"
    step: int
    key: str
    reason: Literal["interval", "signal", "final", "requested", "time_limit", "stop"] = "interval"


class HeartbeatEvent(_Event):
    """Still at work in a stage without steps (sent every minute): what, and for how long."""
    type: Literal["heartbeat"] = "heartbeat"
    stage: Stage
    activity: str                      # e.g. "loading the base model"
    elapsed_seconds: float             # since that activity began


class EvalScores(BaseModel):
    loss: float
    perplexity: float


class EvaluationEvent(_Event):
    type: Literal["evaluation"] = "evaluation"
    split: Literal["validation", "training"] = "validation"   # training: no held-out split
    conversations: int
    targets: int
    tokens: int
    base: EvalScores
    trained: EvalScores | None = None
    improvement_pct: float | None = None
    # The whole suite's summary (``shared.evaluation.report.EvaluationSummary``) is in storage
    # at ``key``; the event carries its measures and counts, never the answers.
    key: str | None = None
    run_id: str | None = None                # a re-evaluation's id
    measures: list[dict] | None = None
    suites: dict | None = None
    flags: list[dict] | None = None


class ArtifactEvent(_Event):
    type: Literal["artifact"] = "artifact"
    kind: Literal["adapter", "metrics", "summary", "evaluation"]
    key: str
    size_bytes: int


class WarningEvent(_Event):
    type: Literal["warning"] = "warning"
    code: str
    message: str


class ErrorInfo(BaseModel):
    type: str
    user_error: bool
    message: str
    fix: str | None = None
    cause: str | None = None          # the likely cause, in a sentence
    adjustment: dict | None = None    # settings a retry should change, e.g. {"batch_size": 2}
    count: int | None = None          # for inputs with problems: how many, and each one
    problems: list[dict] | None = None


class ErrorEvent(_Event):
    type: Literal["error"] = "error"
    error: ErrorInfo


class CompletedEvent(_Event):
    type: Literal["completed"] = "completed"
    summary: dict


Event = Annotated[Union[StageEvent, MetricsEvent, CheckpointEvent, EvaluationEvent,
                        ArtifactEvent, WarningEvent, ErrorEvent, CompletedEvent, HeartbeatEvent],
                  Field(discriminator="type")]
EVENT_ADAPTER = TypeAdapter(Event)


def parse_event(raw: dict):
    """Validate one received event (raises pydantic's ValidationError)."""
    return EVENT_ADAPTER.validate_python(raw)


class EventStream:
    """Stamps events for one attempt of one job: seq, timestamp, validation."""

    def __init__(self, job_id: str, attempt: int, start_seq: int = 0):
        self.job_id = job_id
        self.attempt = attempt
        self.seq = start_seq

    def make(self, type: str, **fields) -> dict:
        event = EVENT_ADAPTER.validate_python({
            "type": type, "job_id": self.job_id, "attempt": self.attempt, "seq": self.seq,
            "ts": datetime.now(timezone.utc).isoformat(timespec="milliseconds"), **fields})
        self.seq += 1
        return event.model_dump(mode="json", exclude_none=True)
