"""Training jobs: create (with a cost estimate), start, cancel, delete; the job input they dispatch."""
from __future__ import annotations

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from control.extensions import db
from control.models import TrainingFile, TrainingJob, User, iso, utcnow
from control.models.types import new_id
from control.services import queue
from shared import cost
from shared.errors import ConfigError, Problem
from shared.job_input import (CheckpointSettings, DatasetRef, Hyperparameters, JobInput,
                              ValidationSettings)


class JobStateError(Exception):
    """A request that the job's current state does not allow (HTTP 409)."""

    def __init__(self, job: TrainingJob, action: str, expected: str, code: str = "invalid_state"):
        super().__init__(f"cannot {action} job {job.id}: it is {job.status}; {expected}")
        self.message, self.code = str(self), code      # code: the API's error code


class NotFound(LookupError):
    def __init__(self, what: str, ident: str):
        super().__init__(f"no {what} {ident!r}")
        self.what, self.ident = what, ident


def visible_job(user: User, job_id: str) -> TrainingJob:
    """The job, if ``user`` may see it; another user's job is not found (404), not forbidden."""
    job = db.session.get(TrainingJob, job_id)
    if job is None or (job.created_by != user.id and not user.is_admin):
        raise NotFound("training job", job_id)
    return job


def visible_file(user: User, file_id: str) -> TrainingFile:
    row = db.session.get(TrainingFile, file_id)
    if row is None or (row.created_by != user.id and not user.is_admin):
        raise NotFound("training file", file_id)
    return row


def visible_files(user: User, limit: int = 500) -> list[TrainingFile]:
    """The training files the user may see (an admin: all), newest first."""
    stmt = select(TrainingFile).order_by(TrainingFile.created_at.desc())
    if not user.is_admin:
        stmt = stmt.where(TrainingFile.created_by == user.id)
    return list(db.session.scalars(stmt.limit(limit)))


def resolve_settings(preset: str, overrides: dict, base_model: str | None, method: str | None,
                     gpu_type: str | None) -> tuple[Hyperparameters, int, str, str, str]:
    """Hyperparameters and the defaults this deployment fills in. Raises ``ConfigError``."""
    overrides = dict(overrides)
    every = overrides.pop("checkpoint_every_steps", None) or 100
    hp = Hyperparameters.for_preset(preset, overrides)
    cfg = current_app.config
    gpu_type = gpu_type or cfg["DEFAULT_GPU_TYPE"]
    if gpu_type not in cost.GPU_CATALOG:
        raise ConfigError([Problem("gpu", f"unknown GPU type {gpu_type!r}: expected one of "
                                   + ", ".join(cost.GPU_CATALOG), "gpu.type")])
    return hp, every, base_model or cfg["DEFAULT_BASE_MODEL"], method or cfg["DEFAULT_METHOD"], gpu_type


def estimate_for(training_file: TrainingFile, hp: Hyperparameters, base_model: str, method: str,
                 gpu_type: str, pricing: str) -> cost.Estimate:
    stats = training_file.statistics
    tokens = stats["tokens"]["folded"]
    return cost.estimate(tokens=tokens, trainable_pairs=stats["trainable_pairs"],
                         num_epochs=hp.num_epochs, targets_per_step=hp.targets_per_step,
                         base_model=base_model, method=method, gpu_type=gpu_type,
                         pricing=pricing, max_steps=hp.max_steps, lora_r=hp.lora_r)


def create(user: User, req) -> TrainingJob:
    """A pending job from a validated ``CreateJob`` request."""
    training_file = visible_file(user, req.training_file_id)
    overrides = req.hyperparameters.model_dump(exclude_none=True)
    hp, every, base_model, method, gpu_type = resolve_settings(
        req.preset, overrides, req.base_model, req.method, req.gpu.type)
    est = estimate_for(training_file, hp, base_model, method, gpu_type, req.gpu.pricing)
    job_id = new_id("tj")
    init_from, source = None, None
    if req.continue_from is not None:
        source, init_from = continue_point(user, req.continue_from.job_id, req.continue_from.step,
                                           base_model, method, hp)
    job = TrainingJob(
        id=job_id, training_file_id=training_file.id,
        name=req.name or f"{training_file.filename} · {req.preset}",
        description=req.description, notes=req.notes, tags=list(req.tags), preset=req.preset,
        base_model=base_model, method=method, gpu_type=gpu_type, gpu_pricing_tier=req.gpu.pricing,
        configuration={"hyperparameters": hp.model_dump(mode="json"),
                       "overrides": overrides, "checkpoint_every_steps": every,
                       "gpu": {"type": gpu_type, "pricing": req.gpu.pricing,
                               "price_per_hour": est.price_per_hour},
                       "base_model": base_model, "method": method,
                       "estimate": est.to_dict(),
                       **({"init_from": init_from,
                           "continue_from": {"job_id": source.id, "step": req.continue_from.step}}
                          if init_from else {})},
        cost_estimate=est.cost_usd, estimated_duration_minutes=est.duration_minutes,
        storage_prefix=f"jobs/{job_id}", status="pending", created_by=user.id,
        retried_from_id=source.id if source else None)
    db.session.add(job)
    db.session.commit()
    if req.start:
        start(job)
    return job


def job_input(job: TrainingJob, attempt: int, time_left_s: float | None = None) -> JobInput:
    """The contract the handler receives: storage keys and settings, never secrets."""
    training_file = db.session.get(TrainingFile, job.training_file_id)
    conf = job.configuration
    return JobInput(
        job_id=job.id, attempt=attempt,
        dataset=DatasetRef(key=training_file.storage_key, sha256=training_file.sha256,
                           format=training_file.format),
        base_model=job.base_model, method=job.method, preset=job.preset,
        hyperparameters=Hyperparameters.model_validate(conf["hyperparameters"]),
        checkpoint=CheckpointSettings(every_steps=conf["checkpoint_every_steps"], prefix=job.storage_prefix,
                                      init_from=conf.get("init_from")),
        validation=ValidationSettings(),
        time_limit_seconds=max(1, int(time_left_s)) if time_left_s is not None else None)


def start(job: TrainingJob) -> TrainingJob:
    if job.status != "pending":
        raise JobStateError(job, "start", "only a pending job can be started")
    job.status = "queued"
    db.session.commit()
    from control import tasks
    queue.enqueue(tasks.dispatch, job.id)
    return job


def cancel(job: TrainingJob, by: str | None = None) -> TrainingJob:
    """Cancel: at once if nothing runs yet; else ask the endpoint and mark cancel_requested.
    The job records who cancelled it and when, as an error of type ``cancelled``."""
    if job.is_final:
        raise JobStateError(job, "cancel", "it has already ended")
    if job.status == "cancel_requested":
        return job
    _record_cancel(job, f"cancelled by {by or 'a user'} at {iso(utcnow())}")
    attempt = job.current_attempt
    if attempt is None or attempt.ended_at is not None:      # nothing runs: done at once
        mark_cancelled(job)
        return job
    job.status = "cancel_requested"
    db.session.commit()
    from control import tasks
    queue.enqueue(tasks.cancel, job.id)
    return job


def _record_cancel(job: TrainingJob, message: str) -> None:
    from shared.errors import ErrorType
    from shared.failures import CAUSES, FIXES
    job.error_type, job.error_user, job.error_message = ErrorType.CANCELLED.value, True, message
    job.error_cause, job.error_fix = CAUSES[ErrorType.CANCELLED], FIXES[ErrorType.CANCELLED]


def mark_cancelled(job: TrainingJob) -> None:
    now = utcnow()
    job.checkpoint_requested_at = job.stalled_at = None
    if job.error_type != "cancelled":          # cancelled on the endpoint itself, not here
        _record_cancel(job, f"cancelled on the GPU endpoint at {iso(now)}")
    job.status = "cancelled"
    job.completed_at = now
    attempt = job.current_attempt
    if attempt is not None and attempt.ended_at is None:
        attempt.ended_at = now
        attempt.outcome = "cancelled"
    settle_cost(job)
    db.session.commit()


def settle_cost(job: TrainingJob) -> None:
    """Cost so far: the attempts' running time at the job's GPU price."""
    price = job.configuration.get("gpu", {}).get("price_per_hour", 0.0)
    job.actual_cost = cost.cost_so_far(sum(a.running_seconds() for a in job.attempts), price)
    if job.is_final and job.started_at:
        job.actual_duration_minutes = job.elapsed_minutes()


def delete(job: TrainingJob) -> None:
    """Delete a job that is not running, with everything it stored."""
    if not (job.is_final or job.status == "pending"):
        raise JobStateError(job, "delete", "cancel it first")
    continuing = [j.id for j in db.session.scalars(select(TrainingJob).where(
        TrainingJob.retried_from_id == job.id,
        TrainingJob.status.not_in(("completed", "failed", "cancelled"))))
        if (j.configuration or {}).get("init_from")]
    if continuing:
        raise JobStateError(job, "delete", f"job {continuing[0]} continues from its checkpoints; "
                            "wait for it to finish")
    from control.services.storage import get_storage
    get_storage().delete_prefix(job.storage_prefix)
    db.session.delete(job)
    db.session.commit()


SORTS = {
    "newest": (TrainingJob.created_at.desc(), TrainingJob.id.desc()),
    "oldest": (TrainingJob.created_at.asc(), TrainingJob.id.asc()),
    "name": (db.func.lower(TrainingJob.name).asc(), TrainingJob.id.asc()),
    "status": (TrainingJob.status.asc(), TrainingJob.created_at.desc()),
    "cost": (TrainingJob.actual_cost.desc(), TrainingJob.created_at.desc()),
    "progress": (TrainingJob.progress_percentage.desc(), TrainingJob.created_at.desc()),
}


def list_jobs(user: User, query):
    """A page of the jobs ``user`` may see, filtered and sorted as ``query`` (``JobListQuery``) says."""
    stmt = select(TrainingJob)
    if not user.is_admin:
        stmt = stmt.where(TrainingJob.created_by == user.id)
    elif query.created_by:
        creator = db.session.scalar(select(User).where(User.email == query.created_by))
        stmt = stmt.where(TrainingJob.created_by == (creator.id if creator else query.created_by))
    if query.status:
        stmt = stmt.where(TrainingJob.status.in_([s.strip() for s in query.status.split(",")]))
    if query.created_after:
        stmt = stmt.where(TrainingJob.created_at >= query.created_after)
    if query.created_before:
        stmt = stmt.where(TrainingJob.created_at < query.created_before)
    if query.preset:
        stmt = stmt.where(TrainingJob.preset == query.preset)
    if query.q:
        like = f"%{query.q}%"
        stmt = stmt.where(TrainingJob.name.ilike(like) | TrainingJob.notes.ilike(like)
                          | TrainingJob.description.ilike(like))
    if query.tag:
        # JSON containment differs by database: match the quoted tag in the list's text.
        stmt = stmt.where(db.cast(TrainingJob.tags, db.String).ilike(f'%"{query.tag}"%'))
    total = db.session.scalar(select(db.func.count()).select_from(stmt.subquery()))
    rows = db.session.scalars(stmt.options(selectinload(TrainingJob.attempts))
                              .order_by(*SORTS[query.sort])
                              .limit(query.per_page).offset((query.page - 1) * query.per_page)).all()
    return rows, total



# ------------------------------------------------------------------ checkpoints, retries, support

def checkpoints(job: TrainingJob) -> list[dict]:
    """The job's complete checkpoints in storage, newest first (the two newest are kept)."""
    from handler import checkpoint
    from control.services.storage import get_storage
    return [{"step": c.step, "key": c.key, "created_at": c.manifest.get("created_at"),
             "reason": c.manifest.get("meta", {}).get("reason")}
            for c in checkpoint.candidates(get_storage(), job.storage_prefix)]


def continue_point(user: User, job_id: str, step: int, base_model: str, method: str,
                   hp: Hyperparameters) -> tuple[TrainingJob, str]:
    """The checkpoint a new job continues from: it must exist, and the adapter must fit."""
    from handler import checkpoint
    from control.services.storage import get_storage
    source = visible_job(user, job_id)
    if not source.is_final:
        raise ConfigError([Problem("continue_from", f"job {job_id} is {source.status}: continue from the "
                                   "checkpoints of a finished job (its newest two are kept while it runs)",
                                   "continue_from.job_id")])
    key = checkpoint.checkpoint_key(source.storage_prefix, step)
    if checkpoint.find(get_storage(), key) is None:
        steps = [c["step"] for c in checkpoints(source)]
        raise ConfigError([Problem("continue_from", f"job {job_id} has no checkpoint of step {step}; "
                                   f"it has: {', '.join(map(str, steps)) or 'none'}", "continue_from.step")])
    theirs = source.configuration["hyperparameters"]
    clashes = [f"{k}: {theirs.get(k)} → {getattr(hp, k)}" for k in ("lora_r", "lora_alpha", "target_modules")
               if theirs.get(k) != getattr(hp, k)]
    if (source.base_model, source.method) != (base_model, method):
        clashes.insert(0, f"base model {source.base_model} ({source.method}) → {base_model} ({method})")
    if clashes:
        raise ConfigError([Problem("continue_from", "a checkpoint's adapter only fits the same base model, "
                                   "method, lora_r, lora_alpha and target modules; changed: "
                                   + "; ".join(clashes), "continue_from")])
    return source, key


def retry_request(job: TrainingJob, req) -> tuple[dict, list[dict]]:
    """A ``CreateJob`` body for a retry of ``job`` (``RetryJob`` ``req``), and the changes it
    makes: the failure's adjustment, then the request's own overrides."""
    conf = job.configuration
    overrides = dict(conf.get("overrides") or {})
    base = dict(conf["hyperparameters"], checkpoint_every_steps=conf.get("checkpoint_every_steps", 100))
    changes: list[dict] = []

    def change(name, value, why):
        before = overrides.get(name, base.get(name))
        if before != value:
            changes.append({"field": name, "from": before, "to": value, "why": why})
        overrides[name] = value

    if req.apply_adjustment and job.error_adjustment:
        for name, value in job.error_adjustment.items():
            change(name, value, f"the suggested fix for {job.error_type}")
    for name, value in req.hyperparameters.model_dump(exclude_none=True).items():
        change(name, value, "asked for")
    body = {"training_file_id": job.training_file_id, "preset": job.preset,
            "hyperparameters": overrides, "base_model": job.base_model, "method": job.method,
            "gpu": {"type": job.gpu_type, "pricing": job.gpu_pricing_tier},
            "name": req.name or f"{job.name} (retry)"[:200], "description": job.description,
            "notes": job.notes, "tags": list(job.tags or []), "start": req.start}
    if not req.from_checkpoint_step and conf.get("continue_from"):
        body["continue_from"] = conf["continue_from"]       # a retry of a continuation continues too
    if req.from_checkpoint_step:
        body["continue_from"] = {"job_id": job.id, "step": req.from_checkpoint_step}
        changes.append({"field": "continue_from", "from": None,
                        "to": f"{job.id} step {req.from_checkpoint_step}", "why": "asked for"})
    return {k: v for k, v in body.items() if v is not None}, changes


def retry(user: User, job: TrainingJob, req) -> tuple[TrainingJob, list[dict]]:
    """A new job from a finished one, with the changes listed (``batch_size: 4 → 2``)."""
    from control.schemas import CreateJob
    if not job.is_final:
        raise JobStateError(job, "retry", "only a finished job (completed, failed or cancelled) can be retried")
    body, changes = retry_request(job, req)
    new = create(user, CreateJob.model_validate(body))
    record_retry(job, new)
    return new, changes


def record_retry(source: TrainingJob, new: TrainingJob) -> None:
    """``new`` repeats ``source``: linked to it, and counted on it. Commits."""
    new.retried_from_id = source.id
    source.retry_count = (source.retry_count or 0) + 1
    db.session.commit()


def request_checkpoint(job: TrainingJob) -> TrainingJob:
    """Ask a training job to checkpoint at its next step (before a planned shutdown, say):
    a flag in storage the handler looks for every few seconds; the event log shows the
    checkpoint (reason ``requested``)."""
    import json

    from control.services.recovery import checkpoint_request_key
    from control.services.storage import get_storage
    if job.status not in ("training", "stalled"):
        raise JobStateError(job, "checkpoint", "only a job that is training can checkpoint now")
    now = utcnow()
    get_storage().put_bytes(checkpoint_request_key(job), json.dumps({"requested_at": now.isoformat()}).encode())
    job.checkpoint_requested_at = now
    db.session.commit()
    return job


def support_bundle(job: TrainingJob, types: list[str] | None = None, text: str | None = None) -> dict:
    """Everything a support ticket needs, in one document: the job and its configuration,
    the classified error, every attempt and interruption, and the event log (all of it, or
    the events of ``types`` / containing ``text``, as the console's event filter shows)."""
    from control.services.job_records import events
    return {"bundle": "brightrun-support/1", "generated_at": iso(utcnow()), "job": job.to_dict(),
            "error": {"type": job.error_type, "user_error": job.error_user, "message": job.error_message,
                      "cause": job.error_cause, "fix": job.error_fix, "adjustment": job.error_adjustment}
            if job.error_type else None,
            "attempts": [a.to_dict() for a in job.attempts],
            "filter": {"type": types[0] if types else None, "text": text},
            "events": [e.to_dict() for e in events(job.id, types=types, text=text, limit=None)]}
