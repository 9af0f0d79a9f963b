"""Outgoing webhooks as the API shows them: endpoints (the signing secret only in the answer
that made it) and their delivery log."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from control.models import DELIVERY_STATES, WEBHOOK_EVENTS
from control.responses.common import Out, Timestamp


class WebhookOut(Out):
    id: str
    url: str
    events: list[Literal[WEBHOOK_EVENTS]]
    description: str | None
    created_at: Timestamp
    deleted_at: Timestamp | None


class WebhookCreated(WebhookOut):
    secret: str = Field(description=(
        "the signing secret (whsec_…), shown in this answer only: verify each delivery's "
        "webhook-signature with it (the Standard Webhooks libraries do)"))


class WebhookList(Out):
    data: list[WebhookOut]


class DeliveryOut(Out):
    id: int
    message_id: str = Field(description="the webhook-id header: the same on every retry, your dedupe key")
    event_type: Literal[WEBHOOK_EVENTS]
    status: Literal[DELIVERY_STATES]
    attempts: int
    next_attempt_at: Timestamp | None
    response_status: int | None = Field(description="the status your endpoint answered the last attempt with")
    last_error: str | None
    delivered_at: Timestamp | None
    created_at: Timestamp


class DeliveryPage(Out):
    data: list[DeliveryOut]
    next_before_id: int | None = Field(description="send it as before_id for the next (older) page; null: no more")


class CompletionAnswer(Out):
    outcome: Literal["settled", "already settled", "not final yet", "left to the monitor"]
