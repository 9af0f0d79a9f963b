"""Request schemas of the team's budget and of approvals (``control/api/budget.py`` and the
console's budget page validate with these same models)."""
from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from control.schemas import Text, WholeNumber, _Strict

MAX_LIMIT_USD = 1_000_000.0
MAX_THRESHOLDS = 5
MAX_RECIPIENTS = 20
FIRST_MONTH = "2020-01"
#: One ``@``, something either side, no spaces; dots only between labels. Internal hosts
#: (``ops@finance``) are addresses too.
_EMAIL = re.compile(r"[^@\s]+@[^@\s.]+(\.[^@\s.]+)*")


class BudgetLimit(_Strict):
    limit_usd: Annotated[float, Field(gt=0, le=MAX_LIMIT_USD, allow_inf_nan=False, description=(
        "the team's monthly limit in USD (more than 0, at most 1,000,000)"))]


class AlertThreshold(_Strict):
    percent: Annotated[int, Field(ge=1, le=100, description="alert when this share of the limit is spent"),
                       WholeNumber]
    channels: Annotated[list[Literal["email", "slack"]], Field(min_length=1, max_length=2, description=(
        "email: each recipient; slack: the team's channel"))]

    @field_validator("channels")
    @classmethod
    def _once_each(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise PydanticCustomError("duplicate_channel", "name each channel once")
        return value


def _email(value: str) -> str:
    value = value.strip()
    if not _EMAIL.fullmatch(value):
        raise PydanticCustomError("email", "{value} is not an email address (name@example.com)",
                                  {"value": repr(value)})
    return value.lower()


class BudgetAlerts(_Strict):
    """The thresholds (1-5, each percent once) and who hears of them (empty: the active admins)."""

    alerts: Annotated[list[AlertThreshold], Field(min_length=1, max_length=MAX_THRESHOLDS)]
    recipients: Annotated[list[Text(320, min_length=3)], Field(max_length=MAX_RECIPIENTS, description=(
        "emails; empty: the active admins"))] = []

    @field_validator("alerts")
    @classmethod
    def _unique_percents(cls, value: list[AlertThreshold]) -> list[AlertThreshold]:
        percents = [a.percent for a in value]
        twice = sorted({p for p in percents if percents.count(p) > 1})
        if twice:
            raise PydanticCustomError("duplicate_percent", "each percent once: {twice} given more than once",
                                      {"twice": ", ".join(f"{p}%" for p in twice)})
        return value

    @field_validator("recipients")
    @classmethod
    def _emails(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(_email(v) for v in value))


def _month(value: str) -> str:
    """``YYYY-MM``, from 2020-01 to this month (UTC)."""
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", value):
        raise PydanticCustomError("month", "expected a month as YYYY-MM (2026-03), got {value}",
                                  {"value": repr(value)})
    now = datetime.now(timezone.utc)
    if value < FIRST_MONTH or value > f"{now.year:04d}-{now.month:02d}":
        raise PydanticCustomError("month", "{value} is out of range: from {first} to this month ({now})",
                                  {"value": value, "first": FIRST_MONTH, "now": f"{now.year:04d}-{now.month:02d}"})
    return value


class MonthQuery(_Strict):
    model_config = ConfigDict(extra="forbid")   # query strings are text
    month: Annotated[Text(7) | None, Field(description=(
        "YYYY-MM (UTC), from 2020-01 to this month; unset: this month"),
        json_schema_extra={"pattern": "^[0-9]{4}-[0-9]{2}$"})] = None

    @field_validator("month")
    @classmethod
    def _bounded(cls, value: str | None) -> str | None:
        return None if value is None else _month(value)


class ApprovalRequest(_Strict):
    """An admin's decision on a job awaiting approval; a decline needs its reason (the owner reads it)."""

    decision: Literal["approve", "decline"]
    reason: Annotated[Text(2000, multiline=True) | None, Field(validate_default=True, description=(
        "why; required to decline"))] = None

    @field_validator("reason")
    @classmethod
    def _reason_to_decline(cls, value: str | None, info: ValidationInfo) -> str | None:
        value = (value or "").strip() or None
        if value is None and info.data.get("decision") == "decline":
            raise PydanticCustomError("missing_reason", "give the reason for declining: the job's owner reads it")
        return value
