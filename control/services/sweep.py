"""The sweep: work whose RQ task was lost, found in the database and enqueued again.

Every ``pipeline worker`` runs it each ``SWEEP_INTERVAL_SECONDS`` (``control/worker.py``),
whatever Redis holds, so a killed RQ worker, a Redis restart that lost every queued task,
or a dropped database connection cost seconds. Safe to run anywhere, any number of times:
a monitor that runs twice stores nothing twice, a dispatch claims its job or does
nothing, and a training file is validated by one task at a time.
"""
from __future__ import annotations

import logging
from datetime import timedelta

from flask import current_app
from sqlalchemy import select

from control.extensions import db
from control.models import JobAttempt, JobStatus, TrainingJob, utcnow
from control.services import budgets, digests, lifecycle, notices, queue, training_files
from control.services.recovery import sweep_quiet_s
from shared.errors import ErrorType
from shared.failures import of_kind

log = logging.getLogger(__name__)


def sweep(now=None) -> dict:
    """Enqueue again what a lost RQ task left behind; returns what it found, by kind."""
    cfg = current_app.config
    now = now or utcnow()
    quiet = timedelta(seconds=sweep_quiet_s(cfg))
    orphans = db.session.scalars(
        select(JobAttempt)
        .where(JobAttempt.ended_at.is_(None), JobAttempt.runpod_job_id.is_not(None),
               db.or_(JobAttempt.monitored_at.is_(None), JobAttempt.monitored_at < now - quiet),
               JobAttempt.dispatched_at < now - quiet)).all()
    for attempt in orphans:
        attempt.monitor_token = JobAttempt.new_monitor_token()   # the old chain, if alive, stops at its next turn
        db.session.commit()
        queue.enqueue(queue.MONITOR, attempt.id, token=attempt.monitor_token)
    # A dispatch that died between recording its attempt and /run: the attempt never got a
    # RunPod id. It is lost; a new attempt's marker stops anything it may have started.
    submit_grace = quiet + timedelta(seconds=120)
    unsubmitted = db.session.scalars(
        select(JobAttempt).where(JobAttempt.ended_at.is_(None), JobAttempt.runpod_job_id.is_(None),
                                 JobAttempt.dispatched_at < now - submit_grace)).all()
    for attempt in unsubmitted:
        if lifecycle.claim_end(attempt):
            lifecycle.recover_or_fail(attempt.job, attempt, of_kind(
                ErrorType.WORKER_LOST, "worker lost: the dispatch stopped before the GPU endpoint took the job"))
    # Jobs whose task is gone: waiting for a dispatch, a cancel, or active with no open attempt.
    stale = db.session.scalars(
        select(TrainingJob).where(TrainingJob.status.in_(JobStatus.active()),
                                  TrainingJob.updated_at < now - quiet,
                                  ~TrainingJob.attempts.any(JobAttempt.ended_at.is_(None)))).all()
    redispatched = cancels = 0
    for job in stale:
        if job.status in JobStatus.WAITING_FOR_DISPATCH:
            queue.enqueue(queue.DISPATCH, job.id)
            redispatched += 1
        elif job.status == JobStatus.CANCEL_REQUESTED:
            queue.enqueue(queue.CANCEL, job.id)
            cancels += 1
        else:                                   # e.g. training, yet its last attempt has ended
            lifecycle.redispatch_orphan(job)
            redispatched += 1
    # Training files still validating after the quiet period: their task may be lost (a
    # killed worker). Validation is safe to run twice, so queue it again.
    validations = training_files.stale_validations(now - quiet)
    for file_id in validations:
        training_files.enqueue_validation(file_id)
    # Telling people: notices not fanned out, messages and webhooks whose task was lost; the
    # budget's thresholds and hard limit; the daily digests when their hour has come.
    told = _isolated(lambda: notices.pending_work(now, quiet.total_seconds()), {})
    money = _isolated(lambda: budgets.enforce(now), {})
    made = _isolated(lambda: digests.schedule(now), 0)
    return {"monitors": len(orphans), "dispatches": redispatched, "cancels": cancels,
            "unsubmitted": len(unsubmitted), "validations": len(validations), **told,
            **{f"budget_{k}": v for k, v in money.items() if k != "month"}, "digests": made}


def _isolated(step, otherwise):
    """One of the sweep's later steps: a failure (Redis or storage down, say) is logged and
    rolled back, and the next step still runs."""
    try:
        return step()
    except Exception:  # noqa: BLE001 - the next sweep tries again
        log.exception("sweep step failed")
        db.session.rollback()
        return otherwise
