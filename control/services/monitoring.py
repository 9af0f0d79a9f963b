"""Watching an attempt: one stream read at a time, and what silence means.

``monitor`` reads the stream once, stores what came, and reschedules itself, so watching
a run never holds a worker. The stream is read-once, so an attempt has one reader: its row
is locked from before the read until the events are stored, and only the chain holding the
attempt's current token goes on (the sweep hands out a new one). A worker that goes silent
is stalled, then replaced; a job no GPU takes fails with no capacity; an attempt that ended
is reconciled from the handler's event log in storage and settled (``lifecycle``).
"""
from __future__ import annotations

import logging

from flask import current_app

from control.extensions import db
from control.models import AttemptOutcome, JobAttempt, JobStatus, TrainingJob, utcnow
from control.services import gpu_endpoint, lifecycle, queue, spend
from control.services.dispatch import cancel_quietly
from control.services.ingest import error_from_status, ingest, stored_event_log
from control.services.recovery import stall_limit_s
from control.services.storage import get_storage
from shared.errors import ErrorType, StorageError
from shared.failures import of_kind

log = logging.getLogger(__name__)
MAX_ENDPOINT_FAILURES = 20


def monitor(attempt_id: str, failures: int = 0, token: str | None = None) -> str:
    """One stream read of an attempt; returns what became of it."""
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
        status, chunks = gpu_endpoint.stream(attempt.runpod_job_id, gpu_endpoint.endpoint_of(job))
    except gpu_endpoint.EndpointError as exc:
        if exc.status == 404 or failures + 1 >= MAX_ENDPOINT_FAILURES:
            finish_attempt(job, attempt, "LOST", {"error": f"worker lost: the endpoint lost the job: {exc}"})
            return AttemptOutcome.LOST.value
        log.warning("attempt %s: %s (try %d)", attempt_id, exc, failures + 1)
        db.session.commit()
        queue.enqueue(queue.MONITOR, attempt_id, failures + 1, token=token,
                      delay=max(interval, 1) * min(failures + 1, 6))
        return "retry"
    attempt.runpod_status = status
    if status == "IN_PROGRESS" and attempt.started_at is None:
        attempt.started_at = utcnow()
        job.started_at = job.started_at or attempt.started_at
    fresh = ingest(job, attempt, chunks)
    if status in gpu_endpoint.FINAL_STATES and not chunks:
        finish_attempt(job, attempt, status, _safe_status(attempt.runpod_job_id, gpu_endpoint.endpoint_of(job)))
        return "finished"
    if not fresh and not job.is_final:
        verdict = watch_for_trouble(job, attempt, status)
        if verdict:
            return verdict
    # Everything pending came in this read: the next one is due after the interval.
    queue.enqueue(queue.MONITOR, attempt_id, token=token, delay=interval)
    return "watching"


def watch_for_trouble(job: TrainingJob, attempt: JobAttempt, status: str) -> str | None:
    """No news in this read. In RunPod's queue past ``PROVISIONING_TIMEOUT_SECONDS``: no
    capacity, the job fails. Running and silent past the stall limit: stalled; past twice
    the limit: its RunPod job is cancelled and the job recovers with a new attempt."""
    cfg = current_app.config
    now = utcnow()
    if status == "IN_QUEUE":
        if attempt.started_at is not None:
            return None       # RunPod queued it again after a lost worker: it resumes there
        waited = (now - attempt.dispatched_at).total_seconds()
        if waited > cfg["PROVISIONING_TIMEOUT_SECONDS"] and lifecycle.claim_end(attempt):
            cancel_quietly(attempt.runpod_job_id, gpu_endpoint.endpoint_of(job))
            lifecycle.fail_attempt(job, attempt, of_kind(
                ErrorType.GPU_PROVISIONING, f"no capacity: the job stayed in the queue of the GPU "
                                            f"endpoint for {waited / 60:.0f} min without a worker"),
                even_if_cancelling=True)
            db.session.commit()
            return "no capacity"
        return None
    if status != "IN_PROGRESS" or job.status == JobStatus.CANCEL_REQUESTED:
        return None
    silent = (now - (attempt.last_event_at or attempt.started_at or attempt.dispatched_at)).total_seconds()
    if silent <= min(cfg["STALL_MIN_SECONDS"], cfg["STALL_STAGE_SECONDS"]):
        return None                      # under any limit: no need to read the step time
    limit = stall_limit_s(job, attempt, cfg)
    if silent <= limit:
        return None
    if job.status != JobStatus.STALLED:
        lifecycle.mark_stalled(job, silent, limit)
        return None
    if silent <= 2 * limit:
        return None
    if not lifecycle.claim_end(attempt):
        return "settled elsewhere"
    cancel_quietly(attempt.runpod_job_id, gpu_endpoint.endpoint_of(job))
    failure = of_kind(ErrorType.WORKER_LOST, f"worker lost: no event for {silent:.0f} s "
                                             f"(the stall limit is {limit:.0f} s)")
    lifecycle.recover_or_fail(job, attempt, failure, outcome=AttemptOutcome.STALLED)
    return AttemptOutcome.STALLED.value


def finish_attempt(job: TrainingJob, attempt: JobAttempt, runpod_status: str, reply: dict) -> None:
    """Settle an attempt that ended: claim its end (once), reconcile its events from the
    handler's event log, then let the lifecycle settle the job."""
    if not lifecycle.claim_end(attempt):
        return                                       # another monitor settled it
    record_billed_time(attempt, reply)
    try:
        ingest(job, attempt, stored_event_log(get_storage(), job, attempt.number))
    except StorageError as exc:                      # storage down: the stream's events still count
        log.warning("job %s: the event log of attempt %d could not be read: %s", job.id, attempt.number, exc)
        db.session.rollback()
    err = error_from_status(reply)
    if err and err.get("type") == "error":           # the handler's own error event
        ingest(job, attempt, [err])
        err = err["error"]
    lifecycle.settle_attempt(job, attempt, runpod_status, err)
    spend.check_final(job)                           # over the estimate, on the billed cost
    db.session.commit()


def record_billed_time(attempt: JobAttempt, reply: dict) -> None:
    """RunPod's ``executionTime`` and ``delayTime`` (ms) from an ended attempt's status: its
    true cost is the execution time (``lifecycle.settle_cost``)."""
    for key, column in (("executionTime", "execution_ms"), ("delayTime", "delay_ms")):
        value = reply.get(key) if isinstance(reply, dict) else None
        if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < 10**11:
            setattr(attempt, column, int(value))


def _safe_status(runpod_id: str, endpoint_id: str | None = None) -> dict:
    try:
        return gpu_endpoint.status(runpod_id, endpoint_id)
    except gpu_endpoint.EndpointError as exc:
        return {"error": str(exc)}
