"""Job templates as the API shows them: each with its use counts and the share of its jobs
that met the perplexity target, and the same share for every preset."""
from __future__ import annotations

from pydantic import Field

from control.responses.common import AnyObject, Out, Timestamp


class TemplateOut(Out):
    id: str
    name: str
    description: str | None
    configuration: AnyObject = Field(description=(
        "the job settings it fills in: preset, hyperparameters (single overrides), gpu {type, pricing}, "
        "base_model, method, evaluation, rubric_id, max_cost_usd; an absent one is the deployment's default"))
    source_job_id: str | None = Field(description="the job it was saved from; null: an explicit configuration")
    created_by: str
    created_by_email: str | None
    created_at: Timestamp
    updated_at: Timestamp
    uses: int = Field(description="jobs started from it (that still exist)")
    evaluated: int = Field(description="of those, the jobs with a measured perplexity gain")
    met_target: int = Field(description="of the evaluated, those whose perplexity gain met the target")
    share_met_target: float | None = Field(description="met_target / evaluated, 0 to 1; null: none evaluated")


class PresetShare(Out):
    """A preset over all the team's jobs."""

    preset: str
    jobs: int
    evaluated: int = Field(description="jobs with a measured perplexity gain")
    met_target: int
    share_met_target: float | None = Field(description="met_target / evaluated, 0 to 1; null: none evaluated")


class TemplateList(Out):
    data: list[TemplateOut]
    page: int
    per_page: int
    total: int = Field(description="the team's templates, on every page")
    target_pct: float = Field(description="the perplexity target the shares count against: at least this "
                                          "many % better than the base model on held-out conversations")
    presets: list[PresetShare] = Field(description="every preset's share, for comparison")
