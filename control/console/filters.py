"""Template filters and globals: money, durations, times, status badges."""
from __future__ import annotations

from datetime import datetime

from flask import current_app

from control.console.blueprint import bp
from control.models import JobStatus

STATUS_TONE = {JobStatus.COMPLETED: "ok", JobStatus.FAILED: "bad", JobStatus.CANCELLED: "muted",
               JobStatus.CANCEL_REQUESTED: "warn", JobStatus.RECOVERING: "warn", JobStatus.STALLED: "warn",
               JobStatus.PENDING: "muted", JobStatus.AWAITING_APPROVAL: "warn", JobStatus.QUEUED: "info",
               JobStatus.PROVISIONING: "info"}


@bp.app_template_filter("money")
def money(value) -> str:
    """
    >>> money(3.5), money(0.00421), money(None), money(1234.5)
    ('$3.50', '$0.0042', '—', '$1,234.50')
    """
    if value is None:
        return "—"
    value = float(value)
    if 0 < abs(value) < 0.01:
        return f"${value:.4f}"
    return f"${value:,.2f}"


@bp.app_template_filter("minutes")
def minutes(value) -> str:
    """A duration given in minutes, as a person reads it.

    >>> minutes(0.4), minutes(12.25), minutes(135), minutes(None)
    ('24 s', '12 min 15 s', '2 h 15 min', '—')
    """
    if value is None:
        return "—"
    return seconds(float(value) * 60)


@bp.app_template_filter("seconds")
def seconds(value) -> str:
    """
    >>> seconds(5.2), seconds(75), seconds(3600 * 26)
    ('5 s', '1 min 15 s', '26 h 0 min')
    """
    if value is None:
        return "—"
    s = int(round(float(value)))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s"
    return f"{s // 3600} h {s % 3600 // 60} min"


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
