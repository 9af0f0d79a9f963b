"""The team's budget as the API shows it: the month's figures and the alert settings."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from control.responses.common import Out, Timestamp


class DaySpend(Out):
    day: str = Field(description="YYYY-MM-DD (UTC)")
    spent_usd: float = Field(description="what the jobs created that day have cost")
    jobs: int


class UserSpend(Out):
    user_id: str
    email: str
    spent_usd: float
    committed_usd: float
    jobs: int


class TagSpend(Out):
    tag: str = Field(description="a job's tag; (none): untagged. A job with two tags counts under both")
    spent_usd: float
    committed_usd: float
    jobs: int


class ThresholdState(Out):
    percent: int
    channels: list[Literal["email", "slack"]]
    reached: bool = Field(description="the month's spend has reached this share of the limit")
    alerted_at: Timestamp | None = Field(description="when its alert went out this month (once a month)")


class BudgetMonth(Out):
    """A month's figures. A job's cost counts in the month it was created (UTC)."""

    month: str = Field(description="YYYY-MM (UTC)")
    starts_at: Timestamp
    ends_at: Timestamp
    limit_usd: float
    spent_usd: float = Field(description="the actual cost of the month's jobs, running jobs' cost so far included")
    committed_usd: float = Field(description=(
        "what the month's queued, running and awaiting-approval jobs are still expected to cost: "
        "their projected cost (else their estimate) less their cost so far"))
    remaining_usd: float = Field(description="limit - spent - committed")
    percent_spent: float | None
    over_limit: bool = Field(description="spent has reached the limit: running jobs are asked to stop")
    forecast_usd: float
    forecast_rule: str
    jobs: int
    awaiting_approval: int
    by_day: list[DaySpend]
    by_user: list[UserSpend]
    by_tag: list[TagSpend]
    alerts: list[ThresholdState]


class AlertThresholdOut(Out):
    percent: int
    channels: list[Literal["email", "slack"]]


class BudgetAlertsOut(Out):
    alerts: list[AlertThresholdOut]
    recipients: list[str] = Field(description="as set; empty: the active admins")
    effective_recipients: list[str] = Field(description="who hears of a threshold now")
    updated_by: str | None
    updated_at: Timestamp | None
