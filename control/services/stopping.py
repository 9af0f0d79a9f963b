"""Stopping a job for money: the team's budget reached (``budget_exceeded``) or the job's
own spend cap passed (``spend_cap``).

A running attempt is asked, through a control document in storage that the handler looks
for every few seconds, to save a checkpoint and stop; it ends with an error event of that
type, so the job fails as the user's to fix, continuable from that checkpoint. A job that
nothing runs yet (queued, recovering) fails at once. Asking twice does nothing.
"""
from __future__ import annotations

import json

from control.models import TrainingJob, iso, utcnow
from control.services import lifecycle
from control.services.storage import get_storage
from shared.errors import ErrorType


def request_stop(job: TrainingJob, error_type: ErrorType, message: str) -> str:
    """Ask ``job`` to checkpoint and stop; what was done: ``asked``, ``failed`` (nothing ran)
    or ``nothing to stop``. The caller commits."""
    if job.is_final or job.stop_request:
        return "nothing to stop"
    job.stop_request = {"type": error_type.value, "message": message, "at": iso(utcnow())}
    attempt = job.current_attempt
    if attempt is None or attempt.ended_at is not None:
        lifecycle.fail(job, lifecycle.stop_failure(job))
        lifecycle.settle_cost(job)
        return "failed"
    get_storage().put_bytes(job.layout.stop_request, json.dumps(job.stop_request).encode())
    return "asked"

