"""The job lifecycle: every transition of a job or of one of its attempts, with its rule.

The words are ``JobStatus`` and ``AttemptOutcome`` (``control/models/job_status.py``)::

    pending → queued → provisioning → preprocessing → model_loading → training
            → evaluating → finalizing → completed
    stalled      a silent worker; news from it resumes the job, twice the limit replaces it
    recovering   an attempt was lost; a new one resumes from the last checkpoint
    cancel_requested → cancelled;  failed, with a classified error

A job has attempts, one per dispatch to the GPU endpoint, and each ends exactly once
(``claim_end``). Two tasks may race for the same job (a monitor and one the sweep enqueued
again; a dispatch and a cancel), so the claims are conditional ``UPDATE``\\ s: of two, one
wins. Functions that say "Commits" end their own transaction.
"""
from __future__ import annotations

import logging

from flask import current_app
from sqlalchemy import update

from control.extensions import db
from control.models import AttemptOutcome, JobAttempt, JobStatus, TrainingJob, User, iso, utcnow
from control.services import audit, notices, queue
from control.services.exceptions import JobStateError
from control.services.recovery import backoff_s, lost_failure, time_left_s
from shared import cost
from shared.errors import ErrorType
from shared.events import ErrorInfo
from shared.failures import CAUSES, FIXES, Failure, of_kind

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------- starting and dispatching
def queue_for_dispatch(job: TrainingJob) -> TrainingJob:
    """The job is queued and its dispatch enqueued. Commits."""
    job.status = JobStatus.QUEUED
    db.session.commit()
    queue.enqueue(queue.DISPATCH, job.id)
    return job


def claim_for_dispatch(job_id: str) -> TrainingJob | None:
    """The job, now ``provisioning``, if it was waiting for a dispatch and this caller won
    it; None if it was deleted, cancelled, or another dispatch won. Commits."""
    claimed = db.session.execute(
        update(TrainingJob).where(TrainingJob.id == job_id,
                                  TrainingJob.status.in_(JobStatus.WAITING_FOR_DISPATCH))
        .values(status=JobStatus.PROVISIONING, updated_at=utcnow())).rowcount
    db.session.commit()
    return db.session.get(TrainingJob, job_id) if claimed else None


def open_attempt(job: TrainingJob) -> JobAttempt:
    """A new attempt, numbered after the last, recorded before RunPod hears of it: a dispatch
    that dies midway leaves a trace the sweep can settle. Commits."""
    number = max((a.number for a in job.attempts), default=0) + 1
    attempt = JobAttempt(job=job, number=number, runpod_status="SUBMITTING",
                         monitor_token=JobAttempt.new_monitor_token())
    db.session.add(attempt)
    db.session.commit()
    return attempt


def record_submitted(job: TrainingJob, attempt: JobAttempt, runpod_id: str) -> bool:
    """The endpoint took the attempt as ``runpod_id``. False if the attempt was closed
    meanwhile (a cancel while ``/run`` was under way): the caller stops what RunPod started.
    Commits."""
    recorded = db.session.execute(
        update(JobAttempt).where(JobAttempt.id == attempt.id, JobAttempt.ended_at.is_(None))
        .values(runpod_job_id=runpod_id, runpod_status="IN_QUEUE")).rowcount
    if recorded:
        job.runpod_job_id = runpod_id
    db.session.commit()
    return bool(recorded)


# ---------------------------------------------------------------------- ending an attempt
def claim_end(attempt: JobAttempt) -> bool:
    """End the attempt if nobody else has: of two settlers (a monitor and one the sweep
    enqueued again), exactly one gets True. Commits."""
    won = db.session.execute(update(JobAttempt).where(JobAttempt.id == attempt.id, JobAttempt.ended_at.is_(None))
                             .values(ended_at=utcnow())).rowcount
    db.session.commit()
    db.session.refresh(attempt)
    return bool(won)


def fail_attempt(job: TrainingJob, attempt: JobAttempt, failure: Failure, *,
                 even_if_cancelling: bool = False) -> None:
    """The attempt failed for a reason a new attempt cannot fix: the job fails with it, unless
    it already ended or (without ``even_if_cancelling``) is being cancelled. No GPU ever took
    an attempt that fails for no capacity, so there a pending cancel has nothing to stop and
    the job ends failed with the reason. The caller commits."""
    attempt.outcome, attempt.error = AttemptOutcome.FAILED, failure.to_dict()
    if not (job.is_final or (job.status == JobStatus.CANCEL_REQUESTED and not even_if_cancelling)):
        fail(job, failure)


def settle_attempt(job: TrainingJob, attempt: JobAttempt, runpod_status: str, err: dict | None) -> None:
    """An ended attempt (already claimed, its events reconciled) settles the job: superseded
    by a newer attempt; completed; failed or cancelled as the job already is; cancelled;
    failed at the job's time limit; recovered with a new attempt when the failure (the
    handler's classified ``err``, else what RunPod's status says) is one a new worker fixes;
    else failed. Commits."""
    attempt.runpod_status = runpod_status
    attempt.last_step = job.current_step
    job.checkpoint_requested_at = None
    if attempt.number < max(a.number for a in job.attempts):
        attempt.outcome = attempt.outcome or AttemptOutcome.SUPERSEDED   # a newer attempt carries the job
    elif job.status == JobStatus.COMPLETED:
        attempt.outcome = AttemptOutcome.COMPLETED
    elif job.status in (JobStatus.FAILED, JobStatus.CANCELLED):
        attempt.outcome = attempt.outcome or AttemptOutcome(job.status)
    elif job.status == JobStatus.CANCEL_REQUESTED or runpod_status == "CANCELLED":
        attempt.outcome = AttemptOutcome.CANCELLED
        mark_cancelled(job)
        return
    elif runpod_status == "TIMED_OUT" and time_left_s(job) <= 0:
        limit_h = current_app.config["RUNPOD_EXECUTION_TIMEOUT_S"] / 3600
        fail_attempt(job, attempt, of_kind(ErrorType.TIMEOUT, f"TIMED_OUT: the job reached its time limit of "
                                                             f"{limit_h:g} h"))
    else:
        failure = (failure_of(ErrorInfo.model_validate(err)) if err and "user_error" in err
                   else lost_failure(job, runpod_status, (err or {}).get("message")))
        if failure.recoverable:
            outcome = (AttemptOutcome.INTERRUPTED if attempt.outcome == AttemptOutcome.INTERRUPTED
                       else AttemptOutcome.LOST)
            recover_or_fail(job, attempt, failure, outcome=outcome)
            return
        fail_attempt(job, attempt, failure)
    settle_cost(job)
    db.session.commit()


# ---------------------------------------------------------------------- what the handler reports
def enter_stage(job: TrainingJob, stage: str) -> None:
    """A stage event: the job's status follows the handler's stage, unless it is locked
    (ended, or being cancelled)."""
    if job.status not in JobStatus.LOCKED:
        job.status = job.current_stage = stage


def resume_from_stall(job: TrainingJob) -> None:
    """News from a stalled job's worker: it is back in the stage it was in."""
    if job.status == JobStatus.STALLED:
        job.status, job.stalled_at = job.current_stage or JobStatus.PROVISIONING, None


def complete(job: TrainingJob, attempt: JobAttempt) -> None:
    """The handler's ``completed`` event: the job is done and carries no error."""
    attempt.outcome = AttemptOutcome.COMPLETED
    job.status, job.current_stage, job.progress_percentage = JobStatus.COMPLETED, JobStatus.FINALIZING, 100.0
    job.estimated_time_remaining_minutes = 0.0
    job.completed_at = utcnow()
    job.error_message = job.error_type = job.error_fix = job.error_cause = None
    job.error_user = job.error_adjustment = job.stalled_at = job.checkpoint_requested_at = None
    job.stop_request = None
    notices.job_event("job.completed", job)


def fail(job: TrainingJob, failure: Failure) -> None:
    """The job ends failed with a classified reason: message, cause, fix, the user's or ours."""
    job.status = JobStatus.FAILED
    job.error_type, job.error_message, job.error_fix = failure.type, failure.message, failure.fix
    job.error_cause, job.error_user = failure.cause, failure.user_error
    job.error_adjustment = failure.adjustment or None
    job.stalled_at = job.checkpoint_requested_at = None
    job.completed_at = utcnow()
    notices.job_event("job.failed", job)


def stop_failure(job: TrainingJob) -> Failure:
    """The failure a stop request for money (``job.stop_request``) ends the job with."""
    kind = ErrorType(job.stop_request["type"])
    step = job.last_checkpoint_step
    where = f"; it continues from its checkpoint of step {step}" if step else ""
    return Failure(kind.value, True, job.stop_request["message"], CAUSES[kind], FIXES[kind] + where)


def failure_of(info: ErrorInfo) -> Failure:
    """An ``ErrorInfo`` (from an error event) as a ``Failure``."""
    return Failure(info.type, info.user_error, info.message, info.cause or "", info.fix or "",
                   info.adjustment or {})


def mark_stalled(job: TrainingJob, silent_s: float, limit_s: float) -> None:
    """No event for longer than the stall limit: the job shows as stalled. Commits."""
    log.warning("job %s: no event for %.0f s (limit %.0f s): stalled", job.id, silent_s, limit_s)
    job.status, job.stalled_at = JobStatus.STALLED, utcnow()
    attempt = job.current_attempt
    notices.job_event("job.stalled", job, dedupe_key=f"job.stalled:{job.id}:{attempt.number if attempt else 0}",
                      silent_seconds=round(silent_s), stall_limit_seconds=round(limit_s))
    db.session.commit()


# ---------------------------------------------------------------------- cancelling
def request_cancel(job: TrainingJob, by: User | None = None) -> TrainingJob:
    """Cancel: at once if nothing runs yet; else mark ``cancel_requested`` and enqueue the
    cancel on the endpoint. The job records who cancelled it and when, as an error of type
    ``cancelled``. An ended job is refused. Commits."""
    if job.is_final:
        raise JobStateError(job, "cancel", "it has already ended")
    if job.status == JobStatus.CANCEL_REQUESTED:
        return job
    audit.record("job.cancelled", actor=by, target_type="job", target_id=job.id, job_id=job.id,
                 details={"status": job.status})
    _record_cancel(job, f"cancelled by {by.email if by else 'a user'} at {iso(utcnow())}")
    attempt = job.current_attempt
    if attempt is None or attempt.ended_at is not None:      # nothing runs: done at once
        mark_cancelled(job)
        return job
    job.status = JobStatus.CANCEL_REQUESTED
    db.session.commit()
    queue.enqueue(queue.CANCEL, job.id)
    return job


def _record_cancel(job: TrainingJob, message: str) -> None:
    job.error_type, job.error_user, job.error_message = ErrorType.CANCELLED.value, True, message
    job.error_cause, job.error_fix = CAUSES[ErrorType.CANCELLED], FIXES[ErrorType.CANCELLED]


def mark_cancelled(job: TrainingJob) -> None:
    """The job is cancelled, its open attempt ended, its cost settled. Commits."""
    now = utcnow()
    job.checkpoint_requested_at = job.stalled_at = None
    if job.error_type != ErrorType.CANCELLED.value:     # cancelled on the endpoint itself, not here
        _record_cancel(job, f"cancelled on the GPU endpoint at {iso(now)}")
    job.status = JobStatus.CANCELLED
    job.completed_at = now
    attempt = job.current_attempt
    if attempt is not None and attempt.ended_at is None:
        attempt.ended_at = now
        attempt.outcome = AttemptOutcome.CANCELLED
    settle_cost(job)
    notices.job_event("job.cancelled", job)
    db.session.commit()


# ---------------------------------------------------------------------- cost
def settle_cost(job: TrainingJob) -> None:
    """Cost so far: the attempts' billed GPU time (RunPod's execution time once an attempt has
    ended, its running time before) at the job's GPU price."""
    price = job.configuration.get("gpu", {}).get("price_per_hour", 0.0)
    seconds = sum(cost.billed_seconds(a.execution_ms, a.running_seconds()) for a in job.attempts)
    job.actual_cost = cost.cost_so_far(seconds, price)
    if job.is_final and job.started_at:
        job.actual_duration_minutes = job.elapsed_minutes()


# ---------------------------------------------------------------------- recovering
def record_interruption(job: TrainingJob, attempt: JobAttempt, outcome: str, failure: Failure) -> None:
    """What the lost attempt cost: when, its last step, and the steps since its last
    checkpoint that the next attempt trains again."""
    attempt.outcome = outcome
    attempt.error = failure.to_dict()
    attempt.ended_at = attempt.ended_at or utcnow()
    attempt.last_step = job.current_step
    attempt.steps_lost = max(0, (job.current_step or 0) - (job.last_checkpoint_step or 0))


def recover_or_fail(job: TrainingJob, attempt: JobAttempt, failure: Failure,
                    outcome: str = AttemptOutcome.LOST) -> str:
    """Record the interruption, then go ``recovering`` and dispatch a new attempt after the
    backoff; past ``MAX_RECOVERIES`` the job fails and says so. A job that ended or is being
    cancelled meanwhile is left as it is. Commits."""
    if job.is_final or job.status == JobStatus.CANCEL_REQUESTED:
        attempt.outcome = attempt.outcome or outcome
        db.session.commit()
        return "nothing to recover"
    record_interruption(job, attempt, outcome, failure)
    if job.stop_request:                 # asked to stop for money: it stops here instead
        fail(job, stop_failure(job))
        settle_cost(job)
        db.session.commit()
        return JobStatus.FAILED.value
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
        return JobStatus.FAILED.value
    job.checkpoint_recovery_count += 1
    job.status, job.stalled_at = JobStatus.RECOVERING, None
    settle_cost(job)
    db.session.commit()
    delay = backoff_s(job.checkpoint_recovery_count, current_app.config)
    log.warning("job %s: attempt %d %s (%s); recovering (%d of %d) in %.1f s", job.id, attempt.number,
                outcome, failure.message, job.checkpoint_recovery_count, limit, delay)
    queue.enqueue(queue.DISPATCH, job.id, delay=delay)
    return JobStatus.RECOVERING.value


def retry_refused_dispatch(job: TrainingJob, attempt: JobAttempt, failure: Failure) -> str:
    """The endpoint did not take the job (a network error, a 5xx, a 429): no worker ran it,
    so nothing was interrupted and no recovery is spent. The job waits ``queued`` and the
    dispatch is tried again, the backoff doubling to 60 s at most, until the endpoint has
    refused it for ``PROVISIONING_TIMEOUT_SECONDS`` in a row; then the job fails and says
    so. Commits."""
    attempt.outcome, attempt.error = AttemptOutcome.REFUSED, failure.to_dict()
    db.session.commit()
    db.session.refresh(job)
    if job.is_final or job.status == JobStatus.CANCEL_REQUESTED:
        return "nothing to retry"
    streak = []
    for earlier in sorted(job.attempts, key=lambda a: a.number, reverse=True):
        if earlier.outcome != AttemptOutcome.REFUSED:
            break
        streak.append(earlier)
    waited = (utcnow() - streak[-1].dispatched_at).total_seconds()
    if waited >= current_app.config["PROVISIONING_TIMEOUT_SECONDS"]:
        fail(job, Failure(failure.type, failure.user_error,
                          f"the job could not be dispatched in {len(streak)} tries over {waited / 60:.0f} min; "
                          f"the last time: {failure.message}", failure.cause, failure.fix))
        settle_cost(job)
        db.session.commit()
        return JobStatus.FAILED.value
    # Conditional: a cancel that came meanwhile (the attempt had ended, so it settled at once) stays.
    waiting = db.session.execute(update(TrainingJob).where(TrainingJob.id == job.id,
                                                           TrainingJob.status == JobStatus.PROVISIONING)
                                 .values(status=JobStatus.QUEUED, updated_at=utcnow())).rowcount
    db.session.commit()
    if not waiting:
        return "nothing to retry"
    delay = backoff_s(len(streak), current_app.config)
    log.warning("job %s: the endpoint refused attempt %d (%s); trying again in %.1f s",
                job.id, attempt.number, failure.message, delay)
    queue.enqueue(queue.DISPATCH, job.id, delay=delay)
    return JobStatus.QUEUED.value


def redispatch_orphan(job: TrainingJob) -> None:
    """An active job with no open attempt and no task (its last attempt ended, yet nothing
    settled it): it is recovering, and a dispatch is enqueued. Commits."""
    job.status = JobStatus.RECOVERING
    db.session.commit()
    queue.enqueue(queue.DISPATCH, job.id)
