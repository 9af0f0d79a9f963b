"""Outgoing webhooks: the user's registered URLs, signed deliveries (Standard Webhooks),
retried with backoff, with a delivery log per endpoint. (Being built: issue 14.)"""
from __future__ import annotations

from control.models import Notice, WebhookDelivery


def deliveries_for(notice: Notice) -> list[WebhookDelivery]:
    """The deliveries a notice becomes (not yet added to the session)."""
    return []


def deliver(delivery_id: int) -> str:
    """POST one delivery, signed; on a failure, schedule its retry."""
    return "not built"
