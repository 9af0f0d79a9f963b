"""Recovery, the core promise: a lost worker costs minutes, not the run.

An attempt is lost when its stream ends without ``completed``, when RunPod ends it FAILED
(or TIMED_OUT before the job's time limit) for a reason that is not the user's, or when it
reports nothing for longer than the stall limit. The job then goes ``recovering`` and a new
attempt is dispatched; the handler resumes it from the job's newest complete checkpoint.
Each interruption is recorded on its attempt (when, the last step, the steps since the last
checkpoint that are trained again). After ``MAX_RECOVERIES`` the job fails and says so.

The sweep (run by every ``pipeline worker``, whatever Redis holds) finds work whose RQ task
was lost (a killed worker, a Redis restart, a dropped database connection) and enqueues it
again: attempts nobody has read for a while, and jobs waiting for a dispatch.
"""
from __future__ import annotations

import logging
from datetime import timedelta

from flask import current_app
from sqlalchemy import select

from control.extensions import db
from control.models import JobAttempt, MetricPoint, TrainingJob, utcnow
from shared.errors import ErrorType
from shared.failures import Failure, classify_text, of_kind
from shared.storage import join

log = logging.getLogger(__name__)


def attempt_marker_key(job: TrainingJob) -> str:
    """Where the handler reads which attempt is current: an older one stops (never two writers)."""
    return join(job.storage_prefix, "control", "attempt.json")


def checkpoint_request_key(job: TrainingJob) -> str:
    return join(job.storage_prefix, "control", "checkpoint-request.json")


def time_left_s(job: TrainingJob) -> float:
    """The job's hard time limit (``RUNPOD_EXECUTION_TIMEOUT_S``, 24 h) less the running time
    of its attempts so far: what the next attempt may use."""
    used = sum(a.running_seconds() for a in job.attempts)
    return current_app.config["RUNPOD_EXECUTION_TIMEOUT_S"] - used


def seconds_per_step(job: TrainingJob, attempt: JobAttempt) -> float | None:
    """The job's training seconds per step (cumulative over its attempts), read from the
    newest step this attempt trained; None until it has trained one (a new attempt still
    loads the model and its checkpoint first)."""
    row = db.session.execute(
        select(MetricPoint.step, MetricPoint.elapsed_seconds)
        .where(MetricPoint.training_job_id == job.id, MetricPoint.attempt == attempt.number)
        .order_by(MetricPoint.step.desc()).limit(1)).first()
    if row is None or not row.step or not row.elapsed_seconds:
        return None
    return row.elapsed_seconds / row.step


def stall_limit_s(job: TrainingJob, attempt: JobAttempt, config) -> float:
    """How long an attempt may report nothing before it is stalled: scaled to the job's own
    step time once the attempt trains (``STALL_STEP_FACTOR`` steps, at least
    ``STALL_MIN_SECONDS``), ``STALL_STAGE_SECONDS`` before its first step and in the stages
    without steps. The job's stage may still be an earlier attempt's: a new attempt that
    is still starting is not held to the training pace."""
    per_step = seconds_per_step(job, attempt) if job.current_stage == "training" else None
    if per_step is None:
        return float(config["STALL_STAGE_SECONDS"])
    return max(float(config["STALL_MIN_SECONDS"]), config["STALL_STEP_FACTOR"] * per_step)


def claim_end(attempt: JobAttempt) -> bool:
    """End the attempt if nobody else has: of two settlers (a monitor and one the sweep
    enqueued again), exactly one gets True. Commits."""
    from sqlalchemy import update
    now = utcnow()
    won = db.session.execute(update(JobAttempt).where(JobAttempt.id == attempt.id, JobAttempt.ended_at.is_(None))
                             .values(ended_at=now)).rowcount
    db.session.commit()
    db.session.refresh(attempt)
    return bool(won)


def endpoint_failure(exc: Exception) -> Failure:
    """A dispatch that failed: a network or server hiccup (no answer, 408, 429, 5xx) or
    storage refusing the attempt marker is tried again; a refused key, a missing endpoint,
    a refused request, or a bug is not."""
    from control.services.gpu_endpoint import EndpointError
    status = getattr(exc, "status", None) if isinstance(exc, EndpointError) else None
    if isinstance(exc, EndpointError) and status in (401, 403, 404):
        return Failure(ErrorType.GPU_PROVISIONING.value, False,
                       f"the GPU endpoint refused the job: {exc}",
                       "The endpoint id or the API key is wrong, or the endpoint was deleted.",
                       "Check RUNPOD_ENDPOINT_ID and RUNPOD_API_KEY (or that the local endpoint runs), then retry.")
    if isinstance(exc, EndpointError) and status is not None and status < 500 and status not in (408, 429):
        return Failure(ErrorType.INTERNAL.value, False,
                       f"the GPU endpoint refused the job's request: {exc}",
                       "The endpoint did not accept the request the control plane sent (too large, or "
                       "not in the form it expects).",
                       "Report it with the support bundle; retrying the same job will not help.")
    if isinstance(exc, EndpointError):
        return Failure(ErrorType.STORAGE.value, False,            # the taxonomy's network / storage
                       f"the GPU endpoint did not take the job: {exc}",
                       "The GPU endpoint (RunPod's API, or the local endpoint) did not answer or answered "
                       "with a server error; no worker ran the job.",
                       "Nothing to change: the dispatch is tried again until it has failed for "
                       "PROVISIONING_TIMEOUT_SECONDS. If it keeps failing, check RunPod's status and "
                       "RUNPOD_ENDPOINT_ID (or that the local endpoint runs).")
    return classify_text(f"{type(exc).__name__}: {exc}")      # e.g. storage refused the attempt marker


def sweep_quiet_s(config) -> float:
    """How long a task may be silent before the sweep takes it for lost."""
    return max(3 * config["MONITOR_INTERVAL_SECONDS"], config["SWEEP_GRACE_SECONDS"])


def backoff_s(tries: int, config) -> float:
    """The wait before try ``tries`` (1, 2, ...): ``RECOVERY_BACKOFF_SECONDS`` doubling, at
    most 60 s, and always well inside the sweep's quiet period, so the sweep never takes a
    dispatch that is only waiting for a lost one and starts a second chain.

    >>> backoff_s(1, {"RECOVERY_BACKOFF_SECONDS": 5, "MONITOR_INTERVAL_SECONDS": 5, "SWEEP_GRACE_SECONDS": 60})
    5.0
    >>> backoff_s(5, {"RECOVERY_BACKOFF_SECONDS": 5, "MONITOR_INTERVAL_SECONDS": 5, "SWEEP_GRACE_SECONDS": 60})
    45.0
    """
    return min(60.0, 0.75 * sweep_quiet_s(config), float(config["RECOVERY_BACKOFF_SECONDS"]) * 2 ** (tries - 1))


def record_interruption(job: TrainingJob, attempt: JobAttempt, outcome: str, failure: Failure) -> None:
    attempt.outcome = outcome
    attempt.error = failure.to_dict()
    attempt.ended_at = attempt.ended_at or utcnow()
    attempt.last_step = job.current_step
    attempt.steps_lost = max(0, (job.current_step or 0) - (job.last_checkpoint_step or 0))


def recover_or_fail(job: TrainingJob, attempt: JobAttempt, failure: Failure, outcome: str = "lost") -> str:
    """Record the interruption, then dispatch a new attempt, or fail past the limit. Commits."""
    from control.services import queue
    from control.services.ingest import fail
    from control.services.jobs import settle_cost
    from control import tasks

    if job.is_final or job.status == "cancel_requested":
        attempt.outcome = attempt.outcome or outcome
        db.session.commit()
        return "nothing to recover"            # cancelled (or ended) meanwhile
    record_interruption(job, attempt, outcome, failure)
    limit = current_app.config["MAX_RECOVERIES"]
    if job.checkpoint_recovery_count >= limit:
        fail(job, Failure(failure.type, failure.user_error,
                          f"the job was interrupted {job.checkpoint_recovery_count + 1} times, more than "
                          f"the limit of {limit} recoveries; the last time: {failure.message}",
                          failure.cause,
                          "Retry the job (it continues from its last checkpoint, step "
                          f"{job.last_checkpoint_step or 0}), or use on-demand pricing if spot "
                          "workers keep being reclaimed; MAX_RECOVERIES sets the limit."))
        settle_cost(job)
        db.session.commit()
        return "failed"
    job.checkpoint_recovery_count += 1
    job.status, job.stalled_at = "recovering", None
    settle_cost(job)
    db.session.commit()
    delay = backoff_s(job.checkpoint_recovery_count, current_app.config)
    log.warning("job %s: attempt %d %s (%s); recovering (%d of %d) in %.1f s", job.id, attempt.number,
                outcome, failure.message, job.checkpoint_recovery_count, limit, delay)
    queue.enqueue(tasks.dispatch, job.id, delay=delay)
    return "recovering"


def retry_refused_dispatch(job: TrainingJob, attempt: JobAttempt, failure: Failure) -> str:
    """The endpoint did not take the job (a network error, a 5xx, a 429): no worker ran it,
    so nothing was interrupted and no recovery is spent. The job waits ``queued`` and the
    dispatch is tried again, the backoff doubling to 60 s at most, until the endpoint has
    refused it for ``PROVISIONING_TIMEOUT_SECONDS`` in a row; then the job fails and says
    so. Commits."""
    from control.services import queue
    from control.services.ingest import fail
    from control.services.jobs import settle_cost
    from control import tasks

    from sqlalchemy import update

    attempt.outcome, attempt.error = "refused", failure.to_dict()
    db.session.commit()
    db.session.refresh(job)
    if job.is_final or job.status == "cancel_requested":
        return "nothing to retry"
    streak = []
    for earlier in sorted(job.attempts, key=lambda a: a.number, reverse=True):
        if earlier.outcome != "refused":
            break
        streak.append(earlier)
    waited = (utcnow() - streak[-1].dispatched_at).total_seconds()
    if waited >= current_app.config["PROVISIONING_TIMEOUT_SECONDS"]:
        fail(job, Failure(failure.type, failure.user_error,
                          f"the job could not be dispatched in {len(streak)} tries over {waited / 60:.0f} min; "
                          f"the last time: {failure.message}", failure.cause, failure.fix))
        settle_cost(job)
        db.session.commit()
        return "failed"
    # Conditional: a cancel that came meanwhile (the attempt had ended, so it settled at once) stays.
    waiting = db.session.execute(update(TrainingJob).where(TrainingJob.id == job.id,
                                                           TrainingJob.status == "provisioning")
                                 .values(status="queued", updated_at=utcnow())).rowcount
    db.session.commit()
    if not waiting:
        return "nothing to retry"
    delay = backoff_s(len(streak), current_app.config)
    log.warning("job %s: the endpoint refused attempt %d (%s); trying again in %.1f s",
                job.id, attempt.number, failure.message, delay)
    queue.enqueue(tasks.dispatch, job.id, delay=delay)
    return "queued"


def lost_failure(job: TrainingJob, runpod_status: str, reason: str | None) -> Failure:
    """An attempt RunPod ended without the handler saying why: a lost worker, unless the text
    says more (a storage outage, a GPU fault, out of memory with this job's settings)."""
    from shared.cost import GPU_CATALOG
    text = reason or f"the worker ended the attempt as {runpod_status}"
    gpu = GPU_CATALOG.get(job.gpu_type)
    failure = classify_text(text, settings=(job.configuration or {}).get("hyperparameters"),
                            gpu_memory_gb=gpu.memory_gb if gpu and gpu.memory_gb else None)
    if failure.type == ErrorType.INTERNAL.value:
        failure = of_kind(ErrorType.WORKER_LOST, f"worker lost: {failure.message}")
    return failure


def sweep(now=None) -> dict:
    """Enqueue again what a lost RQ task left behind. Safe to run anywhere, any number of
    times: a monitor that runs twice stores nothing twice."""
    from control import tasks
    from control.services import queue

    cfg = current_app.config
    now = now or utcnow()
    quiet = timedelta(seconds=sweep_quiet_s(cfg))
    orphans = db.session.scalars(
        select(JobAttempt)
        .where(JobAttempt.ended_at.is_(None), JobAttempt.runpod_job_id.is_not(None),
               db.or_(JobAttempt.monitored_at.is_(None), JobAttempt.monitored_at < now - quiet),
               JobAttempt.dispatched_at < now - quiet)).all()
    for attempt in orphans:
        attempt.monitor_token = tasks.new_token()      # the old chain, if alive, stops at its next turn
        db.session.commit()
        queue.enqueue(tasks.monitor, attempt.id, token=attempt.monitor_token)
    # A dispatch that died between recording its attempt and /run: the attempt never got a
    # RunPod id. It is lost; a new attempt's marker stops anything it may have started.
    submit_grace = quiet + timedelta(seconds=120)
    unsubmitted = db.session.scalars(
        select(JobAttempt).where(JobAttempt.ended_at.is_(None), JobAttempt.runpod_job_id.is_(None),
                                 JobAttempt.dispatched_at < now - submit_grace)).all()
    for attempt in unsubmitted:
        if claim_end(attempt):
            recover_or_fail(attempt.job, attempt, of_kind(
                ErrorType.WORKER_LOST, "worker lost: the dispatch stopped before the GPU endpoint took the job"))
    # Jobs whose task is gone: waiting for a dispatch, a cancel, or active with no open attempt.
    stale = db.session.scalars(
        select(TrainingJob).where(TrainingJob.status.not_in(("pending", "completed", "failed", "cancelled")),
                                  TrainingJob.updated_at < now - quiet,
                                  ~TrainingJob.attempts.any(JobAttempt.ended_at.is_(None)))).all()
    redispatched = cancels = 0
    for job in stale:
        if job.status in ("queued", "recovering"):
            queue.enqueue(tasks.dispatch, job.id)
            redispatched += 1
        elif job.status == "cancel_requested":
            queue.enqueue(tasks.cancel, job.id)
            cancels += 1
        else:                                   # e.g. training, yet its last attempt has ended
            job.status = "recovering"
            db.session.commit()
            queue.enqueue(tasks.dispatch, job.id)
            redispatched += 1
    return {"monitors": len(orphans), "dispatches": redispatched, "cancels": cancels,
            "unsubmitted": len(unsubmitted)}
