"""Recovery policy, the core promise: a lost worker costs minutes, not the run.

An attempt is lost when its stream ends without ``completed``, when RunPod ends it FAILED
(or TIMED_OUT before the job's time limit) for a reason that is not the user's, or when it
reports nothing for longer than the stall limit. The job then goes ``recovering`` and a new
attempt is dispatched (``lifecycle.recover_or_fail``); the handler resumes it from the job's
newest complete checkpoint. This module holds the rules those transitions ask: how long an
attempt may be silent, how long to wait before the next try, how much time is left, and what
a failure was. The sweep that finds lost tasks is ``sweep.py``.
"""
from __future__ import annotations

from flask import current_app
from sqlalchemy import select

from control.extensions import db
from control.models import JobAttempt, JobStatus, MetricPoint, TrainingJob
from control.services.gpu_endpoint import EndpointError
from shared.cost import GPU_CATALOG
from shared.errors import ErrorType
from shared.failures import Failure, classify_text, of_kind


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
    per_step = seconds_per_step(job, attempt) if job.current_stage == JobStatus.TRAINING else None
    if per_step is None:
        return float(config["STALL_STAGE_SECONDS"])
    return max(float(config["STALL_MIN_SECONDS"]), config["STALL_STEP_FACTOR"] * per_step)


def endpoint_failure(exc: Exception) -> Failure:
    """A dispatch that failed: a network or server hiccup (no answer, 408, 429, 5xx) or
    storage refusing the attempt marker is tried again; a refused key, a missing endpoint,
    a refused request, or a bug is not."""
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


def lost_failure(job: TrainingJob, runpod_status: str, reason: str | None) -> Failure:
    """An attempt RunPod ended without the handler saying why: a lost worker, unless the text
    says more (a storage outage, a GPU fault, out of memory with this job's settings)."""
    text = reason or f"the worker ended the attempt as {runpod_status}"
    gpu = GPU_CATALOG.get(job.gpu_type)
    failure = classify_text(text, settings=(job.configuration or {}).get("hyperparameters"),
                            gpu_memory_gb=gpu.memory_gb if gpu and gpu.memory_gb else None)
    if failure.type == ErrorType.INTERNAL.value:
        failure = of_kind(ErrorType.WORKER_LOST, f"worker lost: {failure.message}")
    return failure
