"""A training job as the API shows it (``TrainingJob.to_dict()``), its list page, its cost
estimate and a retry's result."""
from __future__ import annotations

from typing import Any, Literal, get_type_hints

from pydantic import Field, create_model

from control.models.job_status import JobStatus
from control.responses.common import AnyObject, Open, Out, Timestamp
from shared import cost


class Interruption(Out):
    attempt: int
    at: Timestamp | None
    outcome: str
    last_step: int | None
    steps_lost: int | None
    reason: str | None


class JobOut(Out):
    id: str
    training_file_id: str
    name: str
    description: str | None
    notes: str | None
    tags: list[str]
    configuration: AnyObject = Field(description="hyperparameters, gpu, base model, method, estimate")
    preset: str
    base_model: str
    method: str
    status: JobStatus
    current_stage: str | None
    progress_percentage: float
    started_at: Timestamp | None
    completed_at: Timestamp | None
    cost_estimate: float | None
    actual_cost: float
    estimated_duration_minutes: float | None
    actual_duration_minutes: float | None
    elapsed_minutes: float | None
    runpod_job_id: str | None
    gpu_type: str
    gpu_pricing_tier: str
    current_epoch: float | None
    current_step: int | None
    total_steps: int | None
    latest_loss: float | None
    latest_learning_rate: float | None
    latest_perplexity: float | None
    estimated_time_remaining_minutes: float | None
    error_message: str | None
    error_type: str | None
    error_fix: str | None
    error_cause: str | None
    error_user: bool | None = Field(description="the user's to fix (true) or the platform's")
    error_adjustment: AnyObject | None = Field(description="what a retry changes")
    stalled_at: Timestamp | None
    checkpoint_requested_at: Timestamp | None
    retried_from_id: str | None
    template_id: str | None = Field(description="the template it started from (GET /api/training/templates/<id>); "
                                                "it may have been deleted since")
    retry_count: int
    perplexity_gain_pct: float | None = Field(description="the newest completed evaluation's held-out perplexity "
                                                          "improvement, %, + is better; null: not evaluated")
    rubric_id: str | None = Field(description="the brand-voice rubric people score it on; null: the documents' 10")
    delivery_status: Literal["approved", "rejected"] | None = Field(
        description="the newest delivery decision; null: none yet")
    max_cost_usd: float | None = Field(description="the spend cap: past it the job checkpoints and stops (spend_cap)")
    projected_cost_usd: float | None = Field(description="while it runs: cost so far, the steps left at the "
                                                         "measured cost a step, and the evaluation")
    cost_alerts: list[Literal["cost_80", "cost_95", "over_estimate"]] = Field(
        description="the cost alerts it has raised, each once")
    budget_override: AnyObject | None = Field(description="an admin's override of the month's budget: reason, by, at")
    approval: AnyObject | None = Field(description="above APPROVAL_THRESHOLD_USD: state (awaiting, approved, "
                                                   "declined), by, at, reason")
    checkpoint_recovery_count: int
    interruptions: list[Interruption]
    last_checkpoint_step: int | None
    attempts: int = Field(description="how many attempts it has had")
    created_by: str
    created_at: Timestamp
    updated_at: Timestamp


class AttemptOut(Out):
    """One dispatch to the GPU endpoint."""

    number: int
    runpod_job_id: str | None
    runpod_status: str | None
    dispatched_at: Timestamp | None
    started_at: Timestamp | None
    ended_at: Timestamp | None
    events_received: int
    outcome: str | None
    resumed_from_step: int | None
    last_step: int | None
    steps_lost: int | None
    error: AnyObject | None
    execution_ms: int | None = Field(description="RunPod's billed execution time, once it ended")
    delay_ms: int | None = Field(description="RunPod's time in the queue before a worker took it")


# Duration and cost: the cost model's own ``Estimate`` (``shared/cost.py``), its fields read
# from the dataclass so they are written once.
Estimate = create_model("Estimate", __base__=Open, __doc__="Duration and cost (``shared/cost.py``).",
                        **{name: (hint, ...) for name, hint in get_type_hints(cost.Estimate).items()})


class JobDetail(JobOut):
    """A job with its estimate and every attempt."""

    estimate: Estimate | None
    attempt_history: list[AttemptOut]


class Change(Out):
    field: str
    from_: Any = Field(alias="from")
    to: Any
    why: str | None = None


class RetryResult(JobDetail):
    """The new job, and what the retry changed (``batch_size: 4 → 2``)."""

    changes: list[Change]


class JobListPage(Out):
    data: list[JobOut]
    page: int
    per_page: int
    total: int = Field(description="jobs matching the filters, on every page")


class CalibrationRow(Out):
    job_id: str
    name: str
    estimate_usd: float
    actual_usd: float
    ratio: float = Field(description="actual over estimate")


class CostCalibrationOut(Out):
    jobs: int = Field(description="completed jobs with a priced estimate")
    within_15_pct: int
    share_within_15_pct: float | None
    target_share: float
    median_ratio: float | None
    worst: list[CalibrationRow]


class CostEstimateOut(Estimate):
    model_config = Out.model_config
    base_model: str
    method: str
    preset: str
