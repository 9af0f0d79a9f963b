"""A job's evaluation as the API shows it: the measures against their targets, the samples a
page at a time, and the re-evaluations (``control/services/evaluations.py``)."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from control.responses.common import AnyObject, Out
from shared.evaluation.report import Measure


class EvaluationRunOut(Out):
    id: str = Field(description='"training" for the training run\'s own evaluation, else the re-evaluation\'s id')
    kind: Literal["training", "re-evaluation"]
    status: Literal["queued", "running", "completed", "failed"]
    job_id: str | None = None
    settings: AnyObject | None = None
    error: AnyObject | None = None
    judge: AnyObject | None = Field(None, description="the automatic judge's counts, when it ran")
    created_by: str | None = None
    created_at: str | None = None
    started_at: str | None = None
    completed_at: str | None = None


class EvaluationOut(Out):
    job_id: str
    status: Literal["queued", "running", "completed", "failed"]
    run: EvaluationRunOut
    runs: list[EvaluationRunOut]
    measures: list[Measure] = Field(description=(
        "each measure: base, adapter, improvement with its 95% interval, target, and status "
        "met, not_met, waiting_for_review (waits for people's scores), not_measured or informational"))
    size: Literal["quick", "full", "perplexity"] | None = None
    max_new_tokens: int | None = None
    data: AnyObject | None = Field(None, description="what the measures were computed on")
    suites: AnyObject | None = Field(None, description="per suite: samples and their categories")
    flags: list[AnyObject] | None = None
    timings: AnyObject | None = Field(None, description="seconds each part took")
    tokens: AnyObject | None = Field(None, description="tokens scored and generated")
    perplexity: AnyObject | None = None
    forgetting: AnyObject | None = None
    similarity: AnyObject | None = None
    judge: AnyObject | None = None
    reviews: AnyObject | None = Field(None, description=(
        "people's blind scores: ei and brand (null before anyone scored), the rubric, each reviewer's progress"))


class SampleOut(Out):
    suite: Literal["heldout", "ei", "custom"]
    id: str
    category: str | None
    prompt: list[AnyObject]
    base: str
    adapter: str
    reference: str | None
    guidance: list[str] | None
    scores: AnyObject
    judge: str | None = Field(None, description="the automatic judge's verdict: win, tie, loss or invalid")


class SamplesPage(Out):
    job_id: str
    run: str
    suite: Literal["heldout", "ei", "custom"]
    category: str | None
    categories: list[str]
    page: int
    per_page: int
    total: int
    samples: list[SampleOut]
