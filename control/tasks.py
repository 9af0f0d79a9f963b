"""RQ tasks. They take ids, not objects, and every one is short.

- ``dispatch(job_id)``: build the job input, ``/run`` it, record the attempt, start monitoring.
- ``monitor(attempt_id)``: read the stream once, store what came, and reschedule itself;
  when the attempt ends, reconcile from the handler's event log in storage and settle the job.
- ``cancel(job_id)``: ``/cancel`` on the endpoint, then ``cancelled``; no further cost accrues.

Watching a run never holds a worker: one ``monitor`` call takes one stream read (the
local endpoint long-polls for up to a second or two), then frees the worker.
"""
from __future__ import annotations

import functools
import logging

from flask import current_app, has_app_context

from control.extensions import db
from control.models import JobAttempt, TrainingJob, utcnow

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
    from control.services import gpu_endpoint, jobs, queue
    from control.services.ingest import fail

    job = db.session.get(TrainingJob, job_id)
    if job is None or job.status not in ("queued", "recovering"):
        return None                           # deleted or cancelled meanwhile
    number = len(job.attempts) + 1
    job_input = jobs.job_input(job, number)
    try:
        runpod_id = gpu_endpoint.submit(job_input)
    except gpu_endpoint.EndpointError as exc:
        fail(job, "gpu_provisioning", f"the GPU endpoint refused the job: {exc}",
             "Check RUNPOD_ENDPOINT_ID / RUNPOD_API_KEY (or that the local endpoint runs), then retry.")
        db.session.commit()
        return None
    attempt = JobAttempt(job=job, number=number, runpod_job_id=runpod_id, runpod_status="IN_QUEUE")
    db.session.add(attempt)
    job.runpod_job_id = runpod_id
    job.status = "provisioning"
    db.session.commit()
    queue.enqueue(monitor, attempt.id)
    return runpod_id


@in_app
def monitor(attempt_id: str, failures: int = 0) -> str:
    from control.services import gpu_endpoint, queue
    from control.services.ingest import ingest

    attempt = db.session.get(JobAttempt, attempt_id)
    if attempt is None or attempt.ended_at is not None:
        return "done"
    job = attempt.job
    interval = current_app.config["MONITOR_INTERVAL_SECONDS"]
    try:
        status, chunks = gpu_endpoint.stream(attempt.runpod_job_id)
    except gpu_endpoint.EndpointError as exc:
        if exc.status == 404 or failures + 1 >= MAX_ENDPOINT_FAILURES:
            finish_attempt(job, attempt, "LOST", {"error": f"the endpoint lost the job: {exc}"})
            return "lost"
        log.warning("attempt %s: %s (try %d)", attempt_id, exc, failures + 1)
        queue.enqueue(monitor, attempt_id, failures + 1, delay=max(interval, 1) * min(failures + 1, 6))
        return "retry"
    attempt.runpod_status = status
    if status == "IN_PROGRESS" and attempt.started_at is None:
        attempt.started_at = utcnow()
        job.started_at = job.started_at or attempt.started_at
    ingest(job, attempt, chunks)
    if status in gpu_endpoint.FINAL_STATES and not chunks:
        finish_attempt(job, attempt, status, _safe_status(attempt.runpod_job_id))
        return "finished"
    # Everything pending came in this read: the next one is due after the interval.
    queue.enqueue(monitor, attempt_id, delay=interval)
    return "watching"


def _safe_status(runpod_id: str) -> dict:
    from control.services import gpu_endpoint
    try:
        return gpu_endpoint.status(runpod_id)
    except gpu_endpoint.EndpointError as exc:
        return {"error": str(exc)}


def finish_attempt(job: TrainingJob, attempt: JobAttempt, runpod_status: str, reply: dict) -> None:
    """Settle an attempt that ended: reconcile, then completed, failed or cancelled."""
    from control.services.ingest import error_from_status, fail, ingest, stored_event_log
    from control.services.jobs import mark_cancelled, settle_cost
    from control.services.storage import get_storage

    ingest(job, attempt, stored_event_log(get_storage(), job, attempt.number))
    err = error_from_status(reply)
    if err and err.get("type") == "error":           # the handler's own error event
        ingest(job, attempt, [err])
    attempt.runpod_status = runpod_status
    attempt.ended_at = utcnow()
    if job.status == "completed":
        attempt.outcome = "completed"
    elif job.status == "failed":
        attempt.outcome = attempt.outcome or "failed"
    elif job.status == "cancel_requested" or runpod_status == "CANCELLED":
        mark_cancelled(job)
        return
    elif err and "user_error" in err:                # the handler's classified error, by status only
        attempt.outcome, attempt.error = "failed", err
        fail(job, err["type"], err["message"], err.get("fix"))
    else:
        attempt.outcome = "lost"
        reason = (err or {}).get("message") or f"the worker ended the attempt as {runpod_status}"
        if runpod_status == "TIMED_OUT":
            fail(job, "timeout", f"attempt {attempt.number} hit the execution time limit: {reason}",
                 "Reduce num_epochs or max_steps, or raise RUNPOD_EXECUTION_TIMEOUT_S (24 h at most).")
        else:
            fail(job, "worker_lost", f"attempt {attempt.number} ended without completing: {reason}",
                 "Retry the job: it resumes from its last checkpoint"
                 + (f" (step {job.last_checkpoint_step})." if job.last_checkpoint_step else "."))
        attempt.error = {"type": job.error_type, "message": job.error_message}
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
