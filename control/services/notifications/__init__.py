"""Notifications: a notice's messages, one per recipient and channel (Slack, email), kept in
the outbox and delivered at most once each, retried with backoff. (Being built: issue 14.)"""
from __future__ import annotations

from control.models import Notice, OutboxMessage


def messages_for(notice: Notice) -> list[OutboxMessage]:
    """The outbox rows a notice becomes (not yet added to the session)."""
    return []


def deliver(message_id: int) -> str:
    """Send one outbox message; on a failure, schedule its retry."""
    return "not built"

