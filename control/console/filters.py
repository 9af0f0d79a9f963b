"""Template filters and globals: money, durations, times, status badges."""
from __future__ import annotations

from datetime import datetime

from flask import current_app

from control.console.blueprint import bp
from control.models import JobStatus
from control.services.formatting import minutes, money, seconds

STATUS_TONE = {JobStatus.COMPLETED: "ok", JobStatus.FAILED: "bad", JobStatus.CANCELLED: "muted",
               JobStatus.CANCEL_REQUESTED: "warn", JobStatus.RECOVERING: "warn", JobStatus.STALLED: "warn",
               JobStatus.PENDING: "muted", JobStatus.AWAITING_APPROVAL: "warn", JobStatus.QUEUED: "info",
               JobStatus.PROVISIONING: "info"}


# Money and durations are said the same way in the console and in messages (services/formatting.py).
bp.app_template_filter("money")(money)
bp.app_template_filter("minutes")(minutes)
bp.app_template_filter("seconds")(seconds)


@bp.app_template_filter("when")
def when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "—"


@bp.app_template_filter("number")
def number(value, digits: int = 4) -> str:
    """
    >>> number(3.14159), number(0.000312), number(None), number(12000)
    ('3.142', '0.000312', '—', '12,000')
    """
    if value is None:
        return "—"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{float(value):,.{digits}g}" if abs(float(value)) < 1000 else f"{float(value):,.1f}"


@bp.app_template_filter("tone")
def tone(status: str) -> str:
    return STATUS_TONE.get(status, "active")


@bp.app_template_global("status_label")
def status_label(status: str) -> str:
    return status.replace("_", " ")


@bp.app_context_processor
def console_globals() -> dict:
    return {"ACTIVE_STATUSES": JobStatus.active(), "JobStatus": JobStatus,
            "POLL_SECONDS": current_app.config.get("CONSOLE_POLL_SECONDS", 2)}
