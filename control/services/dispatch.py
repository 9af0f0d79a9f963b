"""Sending an attempt to the GPU endpoint, and stopping one there.

``dispatch`` claims the job (one dispatch wins), records the attempt, marks it current in
storage (an older attempt that is still running sees the marker and stops: never two
writers), builds the job input and ``/run``\\ s it, then starts the monitor chain.
"""
from __future__ import annotations

import json
import logging

from control.extensions import db
from control.models import JobStatus, TrainingJob
from control.services import attempt_tokens, gpu_endpoint, lifecycle, queue
from control.services.job_input import job_input
from control.services.recovery import endpoint_failure, time_left_s
from control.services.storage import get_storage

log = logging.getLogger(__name__)


def dispatch(job_id: str) -> str | None:
    """Dispatch the job's next attempt; returns its RunPod id, or None when there was
    nothing to dispatch or the endpoint did not take it."""
    job = lifecycle.claim_for_dispatch(job_id)
    if job is None:
        return None                           # deleted, cancelled, or another dispatch won
    attempt = lifecycle.open_attempt(job)
    webhook = attempt_tokens.webhook_url(attempt_tokens.issue(attempt))
    db.session.commit()
    endpoint_id = gpu_endpoint.endpoint_of(job)
    try:
        get_storage().put_bytes(job.layout.attempt_marker, json.dumps({"attempt": attempt.number}).encode())
        left = time_left_s(job)
        if left <= 0:
            raise TimeoutError("TIMED_OUT: no time is left of the job's time limit")
        runpod_id = gpu_endpoint.submit(job_input(job, attempt.number, left), endpoint_id, webhook)
    except Exception as exc:  # noqa: BLE001 - the endpoint or storage refused: say which
        failure = endpoint_failure(exc)
        if not lifecycle.claim_end(attempt):
            return None
        db.session.refresh(job)
        if failure.recoverable:
            lifecycle.retry_refused_dispatch(job, attempt, failure)
            return None
        lifecycle.fail_attempt(job, attempt, failure)
        db.session.commit()
        return None
    if not lifecycle.record_submitted(job, attempt, runpod_id):
        cancel_quietly(runpod_id, endpoint_id)   # cancelled while /run was under way
        return None
    queue.enqueue(queue.MONITOR, attempt.id, token=attempt.monitor_token)
    return runpod_id


def cancel_on_endpoint(job_id: str) -> str:
    """``/cancel`` the job's running attempt on the endpoint, then mark the job cancelled."""
    job = db.session.get(TrainingJob, job_id)
    if job is None or job.is_final:
        return "nothing to do"
    attempt = job.current_attempt
    if attempt is not None and attempt.runpod_job_id and attempt.ended_at is None:
        try:
            gpu_endpoint.cancel(attempt.runpod_job_id, gpu_endpoint.endpoint_of(job))
        except gpu_endpoint.EndpointError as exc:
            log.warning("job %s: cancel on the endpoint failed: %s", job_id, exc)
        attempt.runpod_status = "CANCELLED"
    lifecycle.mark_cancelled(job)
    return JobStatus.CANCELLED.value


def cancel_quietly(runpod_id: str, endpoint_id: str | None = None) -> None:
    """Stop a RunPod job that nobody will watch; a refusal is logged, not raised."""
    try:
        gpu_endpoint.cancel(runpod_id, endpoint_id)
    except gpu_endpoint.EndpointError as exc:
        log.warning("cancel of %s failed: %s", runpod_id, exc)
