"""The team's monthly budget: the limit, what is spent and committed, alerts at thresholds,
refusing a start that would pass it (unless an admin overrides), and stopping running jobs
when the month's spend reaches it. (Being built: issue 14.)"""
from __future__ import annotations

from control.models import TrainingJob, User


def check_start(job: TrainingJob, by: User | None, override: dict | None) -> None:
    """Raise ``BudgetExceeded`` if starting ``job`` at its estimate would pass the month's
    limit; an admin's ``override`` ({"reason"}) is recorded on the job instead. The caller commits."""


def enforce(now=None) -> dict:
    """The sweep's turn: alert at thresholds crossed; at the limit, ask running jobs (not
    overridden) to checkpoint and stop. Returns what it did."""
    return {}
