"""Stopping a job for money: the team's budget reached (``budget_exceeded``) or the job's
own spend cap passed (``spend_cap``).

A running attempt is asked, through a control document in storage that the handler looks
for every few seconds, to save a checkpoint and stop; it ends with an error event of that
type, so the job fails as the user's to fix, continuable from that checkpoint. A job that
nothing runs yet (queued, recovering) fails at once, if a dispatch does not claim it first
(then it is asked like a running one). Asking twice does nothing; storage that does not
answer leaves the request to be made again at the next turn.
"""
from __future__ import annotations

import json
import logging

from sqlalchemy import update

from control.extensions import db
from control.models import JobStatus, TrainingJob, iso, utcnow
from control.services import lifecycle
from control.services.storage import get_storage
from shared.errors import ErrorType, StorageError

log = logging.getLogger(__name__)


def request_stop(job: TrainingJob, error_type: ErrorType, message: str) -> str:
    """Ask ``job`` to checkpoint and stop; what was done: ``asked``, ``failed`` (nothing ran),
    ``nothing to stop`` or ``not yet`` (storage did not answer). The caller commits."""
    if job.is_final or job.stop_request:
        return "nothing to stop"
    request = {"type": error_type.value, "message": message, "at": iso(utcnow())}
    attempt = job.current_attempt
    if attempt is None or attempt.ended_at is not None:
        # Nothing runs: fail it, unless a dispatch claims it meanwhile (of the two, one wins).
        won = db.session.execute(update(TrainingJob).where(
            TrainingJob.id == job.id, TrainingJob.status.in_(JobStatus.WAITING_FOR_DISPATCH))
            .values(status=JobStatus.FAILED, updated_at=utcnow())).rowcount
        db.session.refresh(job)
        if won:
            job.stop_request = request
            lifecycle.fail(job, lifecycle.stop_failure(job))
            lifecycle.settle_cost(job)
            return "failed"
        attempt = job.current_attempt
        if job.is_final or attempt is None or attempt.ended_at is not None:
            return "nothing to stop"
    try:
        get_storage().put_bytes(job.layout.stop_request, json.dumps(request).encode())
    except StorageError as exc:
        log.warning("job %s: the stop request could not be written (%s); asking again next time", job.id, exc)
        return "not yet"
    job.stop_request = request
    return "asked"
