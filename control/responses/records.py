"""What a job leaves behind, as the API shows it: metric points, the event log, artifacts,
checkpoints, the support bundle and the adapter's signed link."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from control.models.job_status import JobStatus
from control.responses.common import AnyObject, Out, Timestamp
from control.responses.jobs import AttemptOut, JobOut


class MetricPoint(Out):
    """One optimizer step (``METRIC_FIELDS``)."""

    step: int
    epoch: float | None
    training_loss: float | None
    validation_loss: float | None
    learning_rate: float | None
    gradient_norm: float | None
    perplexity: float | None
    tokens_per_second: float | None
    samples_per_second: float | None
    gpu_memory_gb: float | None
    gpu_utilization: float | None
    elapsed_seconds: float | None
    eta_seconds: float | None


class MetricsOut(Out):
    job_id: str
    status: JobStatus
    current_step: int | None
    total_steps: int | None
    points_total: int = Field(description="points after since_step, before thinning")
    every_nth: int = Field(description="1 unless thinned to max_points")
    data: list[MetricPoint]


class EventOut(Out):
    id: int
    attempt: int
    seq: int
    type: str
    ts: str
    received_at: Timestamp
    event: AnyObject = Field(description="the event as the handler sent it (shared/events.py)")


class EventPage(Out):
    job_id: str
    data: list[EventOut]
    next_after_id: int = Field(description="pass as after_id for the next page")


class ArtifactOut(Out):
    adapter_path: str | None
    adapter_size_bytes: int | None
    config_path: str | None
    metrics_path: str | None
    summary_path: str | None
    validation_report_path: str | None
    evaluation: AnyObject | None
    base_perplexity: float | None
    trained_perplexity: float | None
    perplexity_improvement_pct: float | None
    base_ei_score: float | None
    trained_ei_score: float | None
    forgetting_retention: float | None
    brand_voice_consistency: float | None
    deployment_package_path: str | None
    download_count: int
    last_downloaded_at: Timestamp | None
    created_at: Timestamp


class ArtifactsOut(Out):
    job_id: str
    status: JobStatus
    artifacts: ArtifactOut | None = Field(description="once the job has produced them")
    downloads: dict[Literal["adapters", "metrics", "validation-report"], str] = Field(
        description="download paths, once completed")


class Checkpoint(Out):
    step: int
    key: str
    created_at: str | None
    reason: str | None


class CheckpointList(Out):
    job_id: str
    data: list[Checkpoint] = Field(description="complete checkpoints, newest first")


class BundleError(Out):
    type: str | None
    user_error: bool | None
    message: str | None
    cause: str | None
    fix: str | None
    adjustment: AnyObject | None


class BundleFilter(Out):
    type: str | None
    text: str | None


class SupportBundle(Out):
    """Everything a support ticket needs, as one JSON file."""

    bundle: Literal["brightrun-support/1"]
    generated_at: Timestamp
    job: JobOut
    error: BundleError | None
    attempts: list[AttemptOut]
    filter: BundleFilter
    events: list[EventOut]


class AdapterLink(Out):
    """The adapter ZIP behind a signed link (``?redirect=false``)."""

    url: str
    expires_at: str
    filename: str
