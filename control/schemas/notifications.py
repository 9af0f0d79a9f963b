"""Requests about notifications: your preferences (``PUT /api/me/notifications`` and the
console's form) and the outbox's listing."""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field

from control.models import CHANNELS, OUTBOX_STATES, USER_EVENTS
from control.schemas import MAX_PAGE, Text, _Strict

EventName = Literal[USER_EVENTS]
ChannelName = Literal[CHANNELS]


class NotificationSettings(_Strict):
    """Your notification preferences. Fields left out keep their value."""

    events: Annotated[list[EventName], Field(max_length=50, description=(
        "the events you hear of (the daily digest has its own switch): " + ", ".join(USER_EVENTS)))] | None = None
    channels: Annotated[list[ChannelName], Field(max_length=10, description=(
        "where: email (to your address) and slack (the bot posts to slack_channel, or the team's SLACK_CHANNEL)"))] \
        | None = None
    slack_channel: Annotated[Text(80, min_length=1) | None, Field(description=(
        "the Slack channel the bot posts yours to (#name or a channel id); null: the team's"))] = None
    digest: Annotated[bool | None, Field(description="a daily digest of your jobs and spend, by email")] = None


class OutboxQuery(_Strict):
    model_config = ConfigDict(extra="forbid")   # query strings are text: coerce
    status: Literal[OUTBOX_STATES] | None = None
    page: Annotated[int, Field(ge=1, le=MAX_PAGE)] = 1
    per_page: Annotated[int, Field(ge=1, le=100)] = 50
