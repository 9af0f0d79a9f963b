"""RQ tasks. They take ids, not objects, and every one is short.

- ``dispatch(job_id)``: claim the job, record the attempt, ``/run`` it, start monitoring.
- ``monitor(attempt_id)``: read the stream once, store what came, and reschedule itself;
  a silent worker is marked stalled, then replaced; when the attempt ends, reconcile from
  the handler's event log in storage and settle the job: completed, failed, cancelled, or
  recovered with a new attempt (``control/services/recovery.py``).
- ``cancel(job_id)``: ``/cancel`` on the endpoint, then ``cancelled``; no further cost accrues.

Watching a run never holds a worker: one ``monitor`` call takes one stream read (the
local endpoint long-polls for up to a second or two), then frees the worker.
"""
from __future__ import annotations

import functools
import logging

from flask import current_app, has_app_context
from sqlalchemy import update

from control.extensions import db
from control.models import JobAttempt, TrainingJob, utcnow
from shared.errors import ErrorType
from shared.failures import of_kind

log = logging.getLogger(__name__)
MAX_ENDPOINT_FAILURES = 20


def in_app(fn):
    """Run a task inside the app: the worker's own, or one built from the environment."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if not has_app_context():
            from control.app import create_app
            with create_app().app_context():
                return wrapper(*args, **kwargs)
        try:
            return fn(*args, **kwargs)
        finally:
            db.session.remove()
    return wrapper


@in_app
def dispatch(job_id: str) -> str | None:
    """Claim the job (one dispatch wins), record the attempt, mark it current in storage,
    then ``/run`` it. The attempt row exists before RunPod hears of it, so a dispatch that
    dies midway leaves a trace the sweep can settle."""
    import json

    from control.services import gpu_endpoint, jobs, queue
    from control.services.ingest import fail
    from control.services.recovery import (attempt_marker_key, claim_end, endpoint_failure,
                                           retry_refused_dispatch, time_left_s)
    from control.services.storage import get_storage

    claimed = db.session.execute(
        update(TrainingJob).where(TrainingJob.id == job_id, TrainingJob.status.in_(("queued", "recovering")))
        .values(status="provisioning", updated_at=utcnow())).rowcount
    db.session.commit()
    if not claimed:
        return None                           # deleted, cancelled, or another dispatch won
    job = db.session.get(TrainingJob, job_id)
    number = max((a.number for a in job.attempts), default=0) + 1
    attempt = JobAttempt(job=job, number=number, runpod_status="SUBMITTING", monitor_token=new_token())
    db.session.add(attempt)
    db.session.commit()
    try:
        get_storage().put_bytes(attempt_marker_key(job), json.dumps({"attempt": number}).encode())
        left = time_left_s(job)
        if left <= 0:
            raise TimeoutError("TIMED_OUT: no time is left of the job's time limit")
        runpod_id = gpu_endpoint.submit(jobs.job_input(job, number, left))
    except Exception as exc:  # noqa: BLE001 - the endpoint or storage refused: say which
        failure = endpoint_failure(exc)
        if not claim_end(attempt):
            return None
        db.session.refresh(job)
        if failure.recoverable:
            retry_refused_dispatch(job, attempt, failure)
            return None
        attempt.outcome, attempt.error = "failed", failure.to_dict()
        if not (job.is_final or job.status == "cancel_requested"):
            fail(job, failure)
        db.session.commit()
        return None
    # Cancelled while /run was under way: the attempt is closed, so stop what RunPod started.
    recorded = db.session.execute(
        update(JobAttempt).where(JobAttempt.id == attempt.id, JobAttempt.ended_at.is_(None))
        .values(runpod_job_id=runpod_id, runpod_status="IN_QUEUE")).rowcount
    if not recorded:
        db.session.commit()
        _cancel_quietly(runpod_id)
        return None
    job.runpod_job_id = runpod_id
    db.session.commit()
    queue.enqueue(monitor, attempt.id, token=attempt.monitor_token)
    return runpod_id


def new_token() -> str:
    import secrets
    return secrets.token_hex(8)


@in_app
def monitor(attempt_id: str, failures: int = 0, token: str | None = None) -> str:
    """One stream read of an attempt. The attempt's row is locked from before the read until
    its events are stored: the stream is read-once, so two readers must not interleave. Only
    the chain holding the attempt's current token goes on (the sweep starts a new one)."""
    from control.services import gpu_endpoint, queue
    from control.services.ingest import ingest

    attempt = db.session.get(JobAttempt, attempt_id, with_for_update=True, populate_existing=True)
    if attempt is None or attempt.ended_at is not None:
        db.session.rollback()
        return "done"
    if token is not None and attempt.monitor_token not in (None, token):
        db.session.rollback()
        return "another chain watches it"
    token = attempt.monitor_token
    job = attempt.job
    interval = current_app.config["MONITOR_INTERVAL_SECONDS"]
    attempt.monitored_at = utcnow()
    try:
        status, chunks = gpu_endpoint.stream(attempt.runpod_job_id)
    except gpu_endpoint.EndpointError as exc:
        if exc.status == 404 or failures + 1 >= MAX_ENDPOINT_FAILURES:
            finish_attempt(job, attempt, "LOST", {"error": f"worker lost: the endpoint lost the job: {exc}"})
            return "lost"
        log.warning("attempt %s: %s (try %d)", attempt_id, exc, failures + 1)
        db.session.commit()
        queue.enqueue(monitor, attempt_id, failures + 1, token=token,
                      delay=max(interval, 1) * min(failures + 1, 6))
        return "retry"
    attempt.runpod_status = status
    if status == "IN_PROGRESS" and attempt.started_at is None:
        attempt.started_at = utcnow()
        job.started_at = job.started_at or attempt.started_at
    fresh = ingest(job, attempt, chunks)
    if status in gpu_endpoint.FINAL_STATES and not chunks:
        finish_attempt(job, attempt, status, _safe_status(attempt.runpod_job_id))
        return "finished"
    if not fresh and not job.is_final:
        verdict = _watch_for_trouble(job, attempt, status)
        if verdict:
            return verdict
    # Everything pending came in this read: the next one is due after the interval.
    queue.enqueue(monitor, attempt_id, token=token, delay=interval)
    return "watching"


def _watch_for_trouble(job: TrainingJob, attempt: JobAttempt, status: str) -> str | None:
    """No news in this read: a worker that went silent is stalled, then replaced; a job that
    no GPU takes fails with no capacity."""
    from control.services.ingest import fail
    from control.services.recovery import claim_end, recover_or_fail, stall_limit_s

    cfg = current_app.config
    now = utcnow()
    if status == "IN_QUEUE":
        if attempt.started_at is not None:
            return None       # RunPod queued it again after a lost worker: it resumes there
        waited = (now - attempt.dispatched_at).total_seconds()
        if waited > cfg["PROVISIONING_TIMEOUT_SECONDS"] and claim_end(attempt):
            _cancel_quietly(attempt.runpod_job_id)
            failure = of_kind(ErrorType.GPU_PROVISIONING, f"no capacity: the job stayed in the queue of "
                              f"the GPU endpoint for {waited / 60:.0f} min without a worker")
            attempt.outcome, attempt.error = "failed", failure.to_dict()
            if not job.is_final:
                fail(job, failure)
            db.session.commit()
            return "no capacity"
        return None
    if status != "IN_PROGRESS" or job.status == "cancel_requested":
        return None
    silent = (now - (attempt.last_event_at or attempt.started_at or attempt.dispatched_at)).total_seconds()
    if silent <= min(cfg["STALL_MIN_SECONDS"], cfg["STALL_STAGE_SECONDS"]):
        return None                      # under any limit: no need to read the step time
    limit = stall_limit_s(job, attempt, cfg)
    if silent <= limit:
        return None
    if job.status != "stalled":
        log.warning("job %s: no event for %.0f s (limit %.0f s): stalled", job.id, silent, limit)
        job.status, job.stalled_at = "stalled", now
        db.session.commit()
        return None
    if silent <= 2 * limit:
        return None
    if not claim_end(attempt):
        return "settled elsewhere"
    _cancel_quietly(attempt.runpod_job_id)
    failure = of_kind(ErrorType.WORKER_LOST, f"worker lost: no event for {silent:.0f} s "
                                             f"(the stall limit is {limit:.0f} s)")
    recover_or_fail(job, attempt, failure, outcome="stalled")
    return "stalled"


def _cancel_quietly(runpod_id: str) -> None:
    from control.services import gpu_endpoint
    try:
        gpu_endpoint.cancel(runpod_id)
    except gpu_endpoint.EndpointError as exc:
        log.warning("cancel of %s failed: %s", runpod_id, exc)


def _safe_status(runpod_id: str) -> dict:
    from control.services import gpu_endpoint
    try:
        return gpu_endpoint.status(runpod_id)
    except gpu_endpoint.EndpointError as exc:
        return {"error": str(exc)}


def finish_attempt(job: TrainingJob, attempt: JobAttempt, runpod_status: str, reply: dict) -> None:
    """Settle an attempt that ended: reconcile from the handler's event log, then completed,
    failed (the user's error, or the platform's that a new attempt can't fix), cancelled, or
    recovered with a new attempt."""
    from control.services.ingest import error_from_status, fail, failure_of, ingest, stored_event_log
    from control.services.jobs import mark_cancelled, settle_cost
    from control.services.recovery import claim_end, lost_failure, recover_or_fail, time_left_s
    from control.services.storage import get_storage
    from shared.errors import StorageError
    from shared.events import ErrorInfo

    if not claim_end(attempt):
        return                                       # another monitor settled it
    try:
        ingest(job, attempt, stored_event_log(get_storage(), job, attempt.number))
    except StorageError as exc:                      # storage down: the stream's events still count
        log.warning("job %s: the event log of attempt %d could not be read: %s", job.id, attempt.number, exc)
        db.session.rollback()
    err = error_from_status(reply)
    if err and err.get("type") == "error":           # the handler's own error event
        ingest(job, attempt, [err])
        err = err["error"]
    attempt.runpod_status = runpod_status
    attempt.last_step = job.current_step
    job.checkpoint_requested_at = None
    if attempt.number < max(a.number for a in job.attempts):
        attempt.outcome = attempt.outcome or "superseded"   # a newer attempt carries the job
    elif job.status == "completed":
        attempt.outcome = "completed"
    elif job.status in ("failed", "cancelled"):
        attempt.outcome = attempt.outcome or job.status
    elif job.status == "cancel_requested" or runpod_status == "CANCELLED":
        attempt.outcome = "cancelled"
        mark_cancelled(job)
        return
    elif runpod_status == "TIMED_OUT" and time_left_s(job) <= 0:
        failure = of_kind(ErrorType.TIMEOUT, f"TIMED_OUT: the job reached its time limit of "
                                             f"{current_app.config['RUNPOD_EXECUTION_TIMEOUT_S'] / 3600:g} h")
        attempt.outcome, attempt.error = "failed", failure.to_dict()
        fail(job, failure)
    else:
        # The handler's classified error if it sent one; else what RunPod's status says.
        failure = (failure_of(ErrorInfo.model_validate(err)) if err and "user_error" in err
                   else lost_failure(job, runpod_status, (err or {}).get("message")))
        if failure.recoverable:
            outcome = "interrupted" if attempt.outcome == "interrupted" else "lost"
            recover_or_fail(job, attempt, failure, outcome=outcome)
            return
        attempt.outcome, attempt.error = "failed", failure.to_dict()
        fail(job, failure)
    settle_cost(job)
    db.session.commit()


@in_app
def cancel(job_id: str) -> str:
    from control.services import gpu_endpoint
    from control.services.jobs import mark_cancelled

    job = db.session.get(TrainingJob, job_id)
    if job is None or job.is_final:
        return "nothing to do"
    attempt = job.current_attempt
    if attempt is not None and attempt.runpod_job_id and attempt.ended_at is None:
        try:
            gpu_endpoint.cancel(attempt.runpod_job_id)
        except gpu_endpoint.EndpointError as exc:
            log.warning("job %s: cancel on the endpoint failed: %s", job_id, exc)
        attempt.runpod_status = "CANCELLED"
    mark_cancelled(job)
    return "cancelled"
