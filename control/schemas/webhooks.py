"""Requests about outgoing webhooks (``control/api/webhooks.py`` and the console's webhooks
page validate with these same models) and RunPod's completion webhook's body."""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from control.models import WEBHOOK_EVENTS
from control.schemas import SAFE_INT, Text, _Strict

WebhookEvent = Literal[WEBHOOK_EVENTS]


class CreateWebhook(_Strict):
    """A URL to POST signed job events to (Standard Webhooks)."""

    url: Annotated[Text(2048, min_length=1), Field(description=(
        "http or https, no credentials in it, at most 2,048 characters; a public host unless "
        "the platform allows private ones (WEBHOOK_ALLOW_PRIVATE_URLS)"),
        json_schema_extra={"pattern": "^[Hh][Tt][Tt][Pp][Ss]?://[^\\s/?#@]+"})]
    events: Annotated[list[WebhookEvent], Field(min_length=1, max_length=len(WEBHOOK_EVENTS), description=(
        "the events sent there: " + ", ".join(WEBHOOK_EVENTS) + "; unset: all"))] | None = None
    description: Text(200) | None = None


class DeliveriesQuery(_Strict):
    model_config = ConfigDict(extra="forbid")   # query strings are text: coerce
    before_id: Annotated[int, Field(ge=1, le=SAFE_INT, description=(
        "the next page: deliveries older than this one (the previous page's next_before_id)"))] | None = None
    limit: Annotated[int, Field(ge=1, le=100)] = 50


class CompletionCallback(BaseModel):
    """RunPod's body when a job ends: its ``/status`` answer (``id``, ``status``, ``output``
    or ``error``, ``executionTime``, ``delayTime``...). Other keys are kept: RunPod adds
    some, and none is trusted over the token's attempt."""

    model_config = ConfigDict(extra="allow")
    id: Text(200, min_length=1)
    status: Text(40, min_length=1)
