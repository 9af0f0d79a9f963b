"""Jobs estimated above ``APPROVAL_THRESHOLD_USD`` wait as ``awaiting_approval`` until an
admin approves (they are queued) or declines them (cancelled, with the reason). (Being built: issue 14.)"""
from __future__ import annotations

from control.models import TrainingJob


def hold_for_approval(job: TrainingJob) -> bool:
    """Whether ``job`` must wait for an admin; if so it is now ``awaiting_approval`` and the
    admins are told. The caller commits."""
    return False
