"""Notification preferences and the outbox as the API shows them."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from control.models import CHANNELS, OUTBOX_STATES, USER_EVENTS
from control.responses.common import Out, Timestamp


class NotificationSettingsOut(Out):
    events: list[Literal[USER_EVENTS]]
    channels: list[Literal[CHANNELS]]
    slack_channel: str | None
    digest: bool
    updated_at: Timestamp | None = Field(description="null: never set (these are the defaults)")


class OutboxMessageOut(Out):
    id: int
    notice_id: int
    kind: str | None
    job_id: str | None
    user_id: str | None = Field(description="whose message; null: the team's (its Slack)")
    channel: Literal[CHANNELS]
    destination: str = Field(description="an email address, a Slack channel, or team-webhook")
    subject: str
    status: Literal[OUTBOX_STATES] = Field(description=(
        "pending, retrying, sent, dead (given up: see last_error), or kept (no provider configured: never sent)"))
    attempts: int
    next_attempt_at: Timestamp | None
    last_error: str | None
    sent_at: Timestamp | None
    created_at: Timestamp


class OutboxPage(Out):
    data: list[OutboxMessageOut]
    page: int
    per_page: int
    total: int = Field(description="messages matching the filter, on every page")
