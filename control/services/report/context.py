"""What the validation report is rendered from: one :class:`ReportContext`, gathered by the
control plane from the job's row, its evaluation and people's reviews, then handed to
``render.render_html`` or ``render.render_pdf``.

The models are frozen pydantic models, so the gatherer may build them from plain dicts
(``ReportContext.model_validate(data)``) and a missing or misspelt field fails there, with
its path, instead of as a blank in a client's PDF. Every optional value may be ``None``: the
renderer prints "—" or a sentence saying why. The measures are the evaluation's own
:class:`shared.evaluation.report.Measure`, defined once for the API, the console and this.
"""
from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from shared.evaluation.report import Measure


def _iso_time(value: str) -> str:
    """An ISO 8601 time, kept as its text; anything else is refused naming what it got.

    >>> _iso_time("2026-12-01T16:23:00Z")
    '2026-12-01T16:23:00Z'
    >>> _iso_time("yesterday")
    Traceback (most recent call last):
    ...
    ValueError: expected an ISO 8601 time such as 2026-12-01T16:23:00Z, got 'yesterday'
    """
    try:
        datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"expected an ISO 8601 time such as 2026-12-01T16:23:00Z, got {value!r}") from None
    return value


IsoTime = Annotated[str, AfterValidator(_iso_time)]
Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$", description="64 lower-case hex digits")]
Status = Literal["met", "not_met", "waiting_for_review", "not_measured", "informational"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Attempt(_Frozen):
    """One attempt at training the job: a first run, a retry, a resume after an interruption."""

    number: int = Field(ge=1)
    outcome: str                       # e.g. "interrupted (spot reclaimed)", "completed"
    started_at: IsoTime | None = None
    ended_at: IsoTime | None = None
    worker: str | None = None


class JobFacts(_Frozen):
    """The training job: who asked for what, on which hardware, how long it took and what it cost."""

    id: str
    name: str
    description: str | None = None
    created_by: str                    # an email
    base_model: str
    method: Literal["lora", "qlora"]
    preset: str | None = None
    configuration: dict = {}           # the hyperparameters as trained
    gpu_type: str | None = None
    gpu_pricing_tier: Literal["spot", "on_demand"] | None = None
    started_at: IsoTime | None = None
    completed_at: IsoTime | None = None
    duration_minutes: float | None = None
    cost_estimate: float | None = None
    actual_cost: float | None = None
    attempts: list[Attempt] = []
    interruptions: int = 0
    retry_count: int = 0
    checkpoint_recovery_count: int = 0
    software: dict[str, str] = {}      # package -> version


class Split(_Frozen):
    """How many conversations trained and how many were held out to test on."""

    train: int = Field(ge=0)
    validation: int = Field(ge=0)
    fraction: float = Field(ge=0, le=1)


class DatasetFacts(_Frozen):
    """The training file: its identity (the sha256 a client can check) and its statistics."""

    filename: str
    sha256: Sha256
    format: str
    conversations: int = Field(ge=0)
    trainable_pairs: int = Field(ge=0)
    statistics: dict = {}              # ``shared.dataset.stats.describe``'s keys, whichever it has
    folding: dict | None = None
    split: Split | None = None


class Decision(_Frozen):
    """A person's approval or rejection of the adapter for delivery, with their reason."""

    decision: Literal["approved", "rejected"]
    reason: str
    by: str                            # an email
    at: IsoTime


class GateItem(_Frozen):
    """One line of the delivery gate: a measure with a target, its value and whether it is met."""

    id: str
    name: str
    status: Status
    value_text: str | None = None
    target_text: str | None = None


class Gate(_Frozen):
    """Whether the adapter may be delivered: the verdict, why, and the decisions people made."""

    verdict: Literal["approved", "rejected", "waiting_for_review", "not_met"]
    reason: str
    items: list[GateItem] = []
    decision: Decision | None = None   # the current one
    history: list[Decision] = []       # every decision, oldest first


class Reviews(_Frozen):
    """People's scores: the emotional-intelligence review (base against adapter) and the
    brand-voice review (the adapter's answers on the rubric); ``None`` until someone scored."""

    ei: dict | None = None
    brand: dict | None = None
    rubric_name: str = "Brand voice"


class MetricPoint(BaseModel):
    """One optimizer step of the training curve; the other keys of a metrics line are ignored."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    step: int = Field(ge=0)
    training_loss: float | None = None
    validation_loss: float | None = None


class Example(_Frozen):
    """One before/after pair: the client's message, both models' answers, who preferred which."""

    suite: Literal["heldout", "ei", "custom"]
    id: str
    title: str                         # e.g. the scenario's category, or "Held-out turn 3"
    system: str | None = None
    prompt: str                        # the user's last message
    context_turns: int = Field(default=0, ge=0)   # earlier turns, omitted from the report
    base: str
    adapter: str
    reference: str | None = None
    winner: Literal["adapter", "base", "tie"]
    why: str                           # e.g. "2 of 2 reviewers preferred the adapter"


class ReportContext(_Frozen):
    """Everything the validation report shows, and nothing it has to look up."""

    version: int = Field(ge=1)
    generated_at: IsoTime
    job: JobFacts
    dataset: DatasetFacts
    measures: list[Measure]
    gate: Gate
    reviews: Reviews = Reviews()
    forgetting: dict | None = None     # {base: {accuracy, by_topic}, adapter: {...}, retention_pct, questions}
    metrics: list[MetricPoint] = []
    examples: list[Example] = []
    evaluation: dict = {}              # {size, max_new_tokens, run_id, timings, flags}
