"""The jobs' history as the API shows it beyond the list: one dataset's trends."""
from __future__ import annotations

from pydantic import Field

from control.responses.common import Out, Timestamp


class TrendPoint(Out):
    """One completed job of the dataset."""

    id: str
    name: str
    preset: str
    completed_at: Timestamp
    perplexity_gain_pct: float | None = Field(description="held-out perplexity improvement, %, + is better "
                                                          "(the newest evaluation's); null: not evaluated")
    cost_usd: float = Field(description="what it cost, dollars")
    duration_minutes: float | None


class BestJob(Out):
    id: str
    name: str
    perplexity_gain_pct: float


class TrendsSummary(Out):
    best: BestJob | None = Field(description="the job with the highest perplexity gain")
    median_gain_pct: float | None
    median_cost_usd: float | None
    total_cost_usd: float


class TrendsOut(Out):
    """Perplexity gain and cost per completed job of one dataset, oldest first."""

    training_file_id: str
    filename: str
    completed_jobs: int = Field(description="every completed job of the dataset you may see")
    shown: int = Field(description="the newest this many are in points (the query's limit)")
    points: list[TrendPoint]
    summary: TrendsSummary = Field(description="over the points shown")
