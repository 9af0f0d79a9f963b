"""Events into rows: stored once per (job, attempt, seq), applied to the job as they arrive.

The stream is read-once, so an attempt's end is reconciled from the event log the handler
keeps in storage beside its checkpoints (``<prefix>/events/attempt-N/...jsonl``).
"""
from __future__ import annotations

import ast
import json
import logging

from pydantic import ValidationError

from control.extensions import db
from control.models import (AttemptOutcome, JobAttempt, JobStatus, MetricPoint, ModelArtifact,
                            TrainingEvent, TrainingJob, utcnow)
from control.services import lifecycle, notices, queue, spend
from control.services.upsert import insert_for_dialect
from shared.events import parse_event
from shared.failures import RECOVERABLE
from shared.storage import join

log = logging.getLogger(__name__)

# Where each stage puts the progress bar; training fills 10-90% by step.
STAGE_PROGRESS = {JobStatus.PREPROCESSING: 2.0, JobStatus.MODEL_LOADING: 5.0, JobStatus.TRAINING: 10.0,
                  JobStatus.EVALUATING: 92.0, JobStatus.FINALIZING: 97.0}
INSERT_BATCH = 1000    # rows a statement: Postgres takes at most 65,535 bound parameters


def store_events(job: TrainingJob, attempt: JobAttempt, raws: list) -> list:
    """Store the events not seen before; returns them, parsed, in order. Duplicates are dropped."""
    parsed = {}
    for raw in raws:
        try:
            event = parse_event(raw)
        except (ValidationError, TypeError) as exc:
            log.warning("job %s: dropped an event that breaks the contract: %s", job.id, exc)
            continue
        if event.job_id != job.id:
            log.warning("job %s: dropped an event of job %s", job.id, event.job_id)
            continue
        parsed[(event.attempt, event.seq)] = (event, raw)
    if not parsed:
        return []
    now = utcnow()
    rows = [{"training_job_id": job.id, "attempt": a, "seq": s, "type": e.type, "ts": e.ts,
             "payload": raw, "received_at": now} for (a, s), (e, raw) in parsed.items()]
    new = set()
    for start in range(0, len(rows), INSERT_BATCH):      # a long attempt's log: thousands of events
        stmt = (insert_for_dialect(TrainingEvent).values(rows[start:start + INSERT_BATCH])
                .on_conflict_do_nothing(index_elements=["training_job_id", "attempt", "seq"])
                .returning(TrainingEvent.attempt, TrainingEvent.seq))
        new |= {(a, s) for a, s in db.session.execute(stmt)}
    fresh = [parsed[k][0] for k in sorted(new)]
    if fresh:
        attempt.events_received += len(fresh)
        attempt.last_event_at = job.last_event_at = now
        if attempt.started_at is None:
            attempt.started_at = now
        if job.started_at is None:
            job.started_at = now
    return fresh


def ingest(job: TrainingJob, attempt: JobAttempt, raws: list) -> int:
    """Store and apply a batch of events; returns how many were new. Commits."""
    fresh = store_events(job, attempt, raws)
    current = max((a.number for a in job.attempts), default=attempt.number)
    metric_rows = []
    for event in fresh:
        if event.attempt < current:
            continue          # a stale attempt (RunPod re-ran one we gave up on): logged, not applied
        lifecycle.resume_from_stall(job)
        row = apply_event(job, attempt, event)
        if row:
            metric_rows.append(row)
    if metric_rows:
        _upsert_metrics(metric_rows)
    lifecycle.settle_cost(job)
    if fresh:
        spend.check(job)                    # the projection, cost alerts, the spend cap
    db.session.commit()
    if any(e.type == "completed" and (e.summary.get("eval") or {}).get("measures") is not None for e in fresh):
        queue.enqueue_judging(job.id)       # after the commit: the judge reads what was stored
        queue.enqueue_report(job.id, "evaluation")
    return len(fresh)


def _upsert_metrics(rows: list[dict]) -> None:
    latest = {}
    for r in rows:
        latest[r["step"]] = r
    values = list(latest.values())
    for start in range(0, len(values), INSERT_BATCH):
        stmt = insert_for_dialect(MetricPoint).values(values[start:start + INSERT_BATCH])
        update = {c: stmt.excluded[c] for c in values[0] if c not in ("training_job_id", "step")}
        db.session.execute(stmt.on_conflict_do_update(index_elements=["training_job_id", "step"], set_=update))


def _artifact(job: TrainingJob) -> ModelArtifact:
    row = db.session.query(ModelArtifact).filter_by(training_job_id=job.id).one_or_none()
    if row is None:
        row = ModelArtifact(training_job_id=job.id, download_count=0)
        db.session.add(row)
    return row


def apply_event(job: TrainingJob, attempt: JobAttempt, event) -> dict | None:
    """Bring the job row up to date with one new event; returns a metrics row to upsert."""
    kind = event.type
    if kind == "stage":
        if job.status not in JobStatus.LOCKED:
            lifecycle.enter_stage(job, event.stage)
            job.progress_percentage = max(job.progress_percentage or 0.0, STAGE_PROGRESS[event.stage])
        if event.resumed_from_step is not None:
            attempt.resumed_from_step = job.current_step = event.resumed_from_step
            if attempt.number > 1:           # "Interrupted 2x, resumed successfully"
                notices.job_event("job.recovered", job, dedupe_key=f"job.recovered:{job.id}:{attempt.number}",
                                  resumed_from_step=event.resumed_from_step, attempt=attempt.number)
    elif kind == "metrics":
        if event.attempt == attempt.number or event.step >= (job.current_step or 0):
            job.current_step, job.total_steps = event.step, event.total_steps
            job.current_epoch, job.latest_loss, job.latest_learning_rate = event.epoch, event.loss, event.lr
            if event.eta_seconds is not None:
                job.estimated_time_remaining_minutes = round(event.eta_seconds / 60, 2)
            if event.total_steps and job.status not in JobStatus.LOCKED:
                job.progress_percentage = round(10.0 + 80.0 * event.step / event.total_steps, 2)
        return {"training_job_id": job.id, "attempt": event.attempt, "step": event.step,
                "epoch": event.epoch, "training_loss": event.loss, "learning_rate": event.lr,
                "gradient_norm": event.grad_norm, "tokens_per_second": event.tokens_per_second,
                "gpu_memory_gb": event.gpu_memory_gb, "elapsed_seconds": event.elapsed_seconds,
                "eta_seconds": event.eta_seconds, "validation_loss": event.val_loss,
                "perplexity": event.val_perplexity, "recorded_at": utcnow()}
    elif kind == "checkpoint":
        job.last_checkpoint_step = max(job.last_checkpoint_step or 0, event.step)
        if event.reason == "requested":
            job.checkpoint_requested_at = None
    elif kind == "evaluation":
        art = _artifact(job)
        art.evaluation = event.model_dump(mode="json", exclude={"job_id", "attempt", "seq", "ts", "type"})
        art.base_perplexity = event.base.perplexity
        art.trained_perplexity = event.trained.perplexity if event.trained else None
        art.perplexity_improvement_pct = job.perplexity_gain_pct = event.improvement_pct
        art.forgetting_retention = next((m.get("improvement") for m in event.measures or []
                                         if m.get("id") == "forgetting"), None)
        job.latest_perplexity = art.trained_perplexity or art.base_perplexity
        notices.job_event("evaluation.ready", job, perplexity_improvement_pct=art.perplexity_improvement_pct,
                          forgetting_retention=art.forgetting_retention)
    elif kind == "artifact":
        art = _artifact(job)
        if event.kind == "adapter":
            art.adapter_path, art.adapter_size_bytes = event.key, event.size_bytes
            art.config_path = join(event.key, "adapter_config.json")
        elif event.kind == "metrics":
            art.metrics_path = event.key
        elif event.kind == "summary":
            art.summary_path = event.key
    elif kind == "warning":
        if event.code == "interrupted":          # the handler's warning: it checkpointed and stopped
            attempt.outcome = AttemptOutcome.INTERRUPTED
    elif kind == "error":
        info = event.error
        attempt.outcome, attempt.error = AttemptOutcome.FAILED, info.model_dump(mode="json")
        if job.status not in (JobStatus.CANCELLED, JobStatus.COMPLETED) and info.type not in RECOVERABLE:
            lifecycle.fail(job, lifecycle.failure_of(info))   # recoverable ones are settled when the attempt ends
    elif kind == "completed":
        lifecycle.complete(job, attempt)
    return None


def stored_event_log(storage, job: TrainingJob, attempt_number: int) -> list:
    """The events the handler kept in storage for one attempt (every run of it), in order."""
    events = []
    for key in storage.list(job.layout.events(attempt_number)):
        if not key.endswith(".jsonl"):
            continue
        for line in storage.get_bytes(key).decode("utf-8", "replace").splitlines():
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError:
                continue      # a segment cut short by a crash: its complete lines still count
    return events


def error_from_status(reply: dict) -> dict | None:
    """The error of a FAILED status, as ``{"type", "message", "fix"?}`` or a whole error event.

    runpod 1.12 puts ``str()`` of a yielded error (a Python repr, not JSON) under ``error``;
    a handler that raised gives a plain message.

    >>> error_from_status({"error": "{'type': 'out_of_memory', 'user_error': False, 'message': 'OOM', 'fix': 'smaller batch'}"})
    {'type': 'out_of_memory', 'user_error': False, 'message': 'OOM', 'fix': 'smaller batch'}
    >>> error_from_status({"error": "worker lost: killed by SIGKILL"})
    {'type': 'worker_lost', 'message': 'worker lost: killed by SIGKILL'}
    """
    err = reply.get("error") if isinstance(reply, dict) else None
    if isinstance(err, str):
        parsed = None
        try:
            parsed = json.loads(err)
        except json.JSONDecodeError:
            try:
                parsed = ast.literal_eval(err)
            except (ValueError, SyntaxError, MemoryError, RecursionError):
                pass
        err = parsed if isinstance(parsed, dict) else {"type": "worker_lost", "message": err}
    if not isinstance(err, dict):
        return None
    if err.get("type") == "error" and isinstance(err.get("error"), dict):
        return err
    if "message" in err and "type" in err:
        return err
    return {"type": "internal", "message": json.dumps(err)[:2000]}
