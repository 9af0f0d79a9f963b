"""Running a re-evaluation: the ``evaluate`` job kind on the GPU endpoint, watched one stream
read at a time (like an attempt, ``monitoring.py``), its results recorded on its
``EvaluationRun``. Its events are not the job's: they are applied to the run, not stored in
the job's event log (the handler keeps its own copy under ``evaluations/<run id>/events``).
A run the endpoint loses ends failed with the reason; asking again starts a new one."""
from __future__ import annotations

import logging

from flask import current_app
from pydantic import ValidationError

from control.extensions import db
from control.models import EvaluationRun, EvaluationStatus, utcnow
from control.services import gpu_endpoint, notices, queue
from control.services.ingest import error_from_status
from control.services.job_input import evaluation, job_input
from shared.events import parse_event
from shared.job_input import JobInput

log = logging.getLogger(__name__)
MAX_ENDPOINT_FAILURES = 20


def input_for(run: EvaluationRun) -> JobInput:
    """The job's own input, as the ``evaluate`` kind with this run's settings."""
    base = job_input(run.job, attempt=1).model_dump(mode="json")
    base.update(kind="evaluate", time_limit_seconds=None,
                evaluation=evaluation(run.settings, run_id=run.id).model_dump(mode="json"))
    return JobInput.parse(base)


def _fail(run: EvaluationRun, error: dict) -> None:
    run.status, run.error, run.completed_at = EvaluationStatus.FAILED, error, utcnow()
    db.session.commit()


def dispatch(run_id: str) -> str:
    run = db.session.get(EvaluationRun, run_id, with_for_update=True, populate_existing=True)
    if run is None or run.status != EvaluationStatus.QUEUED:
        db.session.rollback()
        return "nothing to dispatch"
    try:
        run.runpod_job_id = gpu_endpoint.submit(input_for(run))
    except gpu_endpoint.EndpointError as exc:
        _fail(run, {"type": "endpoint", "message": str(exc)})
        return "failed"
    except Exception as exc:  # noqa: BLE001 - a run always reaches a final state
        log.exception("evaluation %s: dispatch failed", run_id)
        _fail(run, {"type": "internal", "message": f"could not dispatch the evaluation: {type(exc).__name__}"})
        return "failed"
    run.status, run.started_at = EvaluationStatus.RUNNING, utcnow()
    db.session.commit()
    queue.enqueue(queue.MONITOR_EVALUATION, run.id, delay=current_app.config["MONITOR_INTERVAL_SECONDS"])
    return "dispatched"


def apply(run: EvaluationRun, raw) -> None:
    """One event of the run's stream."""
    try:
        event = parse_event(raw)
    except (ValidationError, TypeError) as exc:
        log.warning("evaluation %s: dropped an event that breaks the contract: %s", run.id, exc)
        return
    if event.type == "evaluation":
        run.summary = event.model_dump(mode="json", exclude={"job_id", "attempt", "seq", "ts", "type"})
    elif event.type == "completed":
        run.summary = run.summary or event.summary.get("eval")
        run.status, run.completed_at = EvaluationStatus.COMPLETED, utcnow()
        run.job.perplexity_gain_pct = (run.summary or {}).get("improvement_pct")   # the newest evaluation's
        measures = {m.get("id"): m.get("improvement") for m in (run.summary or {}).get("measures") or []}
        notices.job_event("evaluation.ready", run.job, dedupe_key=f"evaluation.ready:{run.training_job_id}:{run.id}",
                          run_id=run.id, perplexity_improvement_pct=(run.summary or {}).get("improvement_pct"),
                          forgetting_retention=measures.get("forgetting"))
    elif event.type == "error":
        run.status, run.completed_at = EvaluationStatus.FAILED, utcnow()
        run.error = event.error.model_dump(mode="json")


def monitor(run_id: str, failures: int = 0) -> str:
    """One stream read; reschedules itself until the run ends. An unexpected error is
    retried like an unreachable endpoint, and ends the run failed after as many tries."""
    try:
        return _monitor(run_id, failures)
    except Exception:  # noqa: BLE001 - a run always reaches a final state
        log.exception("evaluation %s: monitoring failed (try %d)", run_id, failures + 1)
        db.session.rollback()
        run = db.session.get(EvaluationRun, run_id)
        if run is None or run.status not in EvaluationStatus.active():
            return "done"
        if failures + 1 >= MAX_ENDPOINT_FAILURES:
            _fail(run, {"type": "internal", "message": "the evaluation could not be followed"})
            return "failed"
        queue.enqueue(queue.MONITOR_EVALUATION, run_id, failures + 1,
                      delay=max(current_app.config["MONITOR_INTERVAL_SECONDS"], 1) * min(failures + 1, 6))
        return "retry"


def _monitor(run_id: str, failures: int) -> str:
    run = db.session.get(EvaluationRun, run_id, with_for_update=True, populate_existing=True)
    if run is None or run.status not in EvaluationStatus.active():
        db.session.rollback()
        return "done"
    interval = current_app.config["MONITOR_INTERVAL_SECONDS"]
    try:
        status, chunks = gpu_endpoint.stream(run.runpod_job_id)
    except gpu_endpoint.EndpointError as exc:
        if exc.status == 404 or failures + 1 >= MAX_ENDPOINT_FAILURES:
            _fail(run, {"type": "worker_lost", "message": f"the endpoint lost the evaluation: {exc}"})
            return "lost"
        db.session.commit()
        queue.enqueue(queue.MONITOR_EVALUATION, run_id, failures + 1, delay=max(interval, 1) * min(failures + 1, 6))
        return "retry"
    for raw in chunks:
        apply(run, raw)
    if run.status == EvaluationStatus.COMPLETED:
        run.job.delivery_status = None      # a decision stands on the evaluation it was made on
        db.session.commit()
        queue.enqueue_judging(run.training_job_id, run.id)
        queue.enqueue_report(run.training_job_id, "evaluation")
        return "completed"
    if run.status == EvaluationStatus.FAILED:
        db.session.commit()
        return "failed"
    if status in gpu_endpoint.FINAL_STATES and not chunks:
        _fail(run, error_from_status(gpu_endpoint.status(run.runpod_job_id)) or {
            "type": "worker_lost", "message": f"the endpoint ended the evaluation {status} without a result"})
        return "failed"
    db.session.commit()
    queue.enqueue(queue.MONITOR_EVALUATION, run_id, delay=interval)
    return "watching"
