"""What every response schema shares: closed bodies, open dicts, timestamps, the error body."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Out(BaseModel):
    """A response body: every field listed (``additionalProperties: false``)."""

    model_config = ConfigDict(extra="forbid")


class Open(BaseModel):
    """An open-ended object (a configuration, an evaluation): these keys at least, any others."""

    model_config = ConfigDict(extra="allow")


#: Seconds, UTC, ``Z``: ``2025-01-31T12:00:00Z``.
Timestamp = datetime
#: A JSON object with any keys.
AnyObject = dict[str, Any]


class ErrorDetail(Open):
    """One problem: its place (``field``, and ``where`` in a dataset) and what is wrong."""

    field: str | None = None
    message: str


class ErrorBody(Out):
    code: str = Field(description="machine-readable: not_found, invalid_request, in_use, ...")
    message: str = Field(description="what is wrong and what to do, for a person")
    field: str | None = Field(None, description="the request field or parameter at fault")
    details: list[ErrorDetail] | None = Field(None, description="every problem, when there are several")
    budget: AnyObject | None = Field(None, description="budget_exceeded: the limit, spent, committed, "
                                                       "this estimate and how much over")


class ErrorOut(Out):
    """Every 4xx and 5xx of the API."""

    error: ErrorBody
