"""Training jobs: create (with a cost estimate), start, cancel, delete; the job input they dispatch."""
from __future__ import annotations

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from control.extensions import db
from control.models import TrainingFile, TrainingJob, User, utcnow
from control.models.types import new_id
from control.services import queue
from shared import cost
from shared.errors import ConfigError, Problem
from shared.job_input import (CheckpointSettings, DatasetRef, Hyperparameters, JobInput,
                              ValidationSettings)


class JobStateError(Exception):
    """A request that the job's current state does not allow (HTTP 409)."""

    def __init__(self, job: TrainingJob, action: str, expected: str):
        super().__init__(f"cannot {action} job {job.id}: it is {job.status}; {expected}")
        self.message = str(self)


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
                       "estimate": est.to_dict()},
        cost_estimate=est.cost_usd, estimated_duration_minutes=est.duration_minutes,
        storage_prefix=f"jobs/{job_id}", status="pending", created_by=user.id)
    db.session.add(job)
    db.session.commit()
    if req.start:
        start(job)
    return job


def job_input(job: TrainingJob, attempt: int) -> JobInput:
    """The contract the handler receives: storage keys and settings, never secrets."""
    training_file = db.session.get(TrainingFile, job.training_file_id)
    conf = job.configuration
    return JobInput(
        job_id=job.id, attempt=attempt,
        dataset=DatasetRef(key=training_file.storage_key, sha256=training_file.sha256,
                           format=training_file.format),
        base_model=job.base_model, method=job.method, preset=job.preset,
        hyperparameters=Hyperparameters.model_validate(conf["hyperparameters"]),
        checkpoint=CheckpointSettings(every_steps=conf["checkpoint_every_steps"], prefix=job.storage_prefix),
        validation=ValidationSettings())


def start(job: TrainingJob) -> TrainingJob:
    if job.status != "pending":
        raise JobStateError(job, "start", "only a pending job can be started")
    job.status = "queued"
    db.session.commit()
    from control import tasks
    queue.enqueue(tasks.dispatch, job.id)
    return job


def cancel(job: TrainingJob) -> TrainingJob:
    """Cancel: at once if nothing runs yet; else ask the endpoint and mark cancel_requested."""
    if job.is_final:
        raise JobStateError(job, "cancel", "it has already ended")
    if job.status == "cancel_requested":
        return job
    attempt = job.current_attempt
    if attempt is None or attempt.runpod_job_id is None:
        mark_cancelled(job)
        return job
    job.status = "cancel_requested"
    db.session.commit()
    from control import tasks
    queue.enqueue(tasks.cancel, job.id)
    return job


def mark_cancelled(job: TrainingJob) -> None:
    now = utcnow()
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
    from control.services.storage import get_storage
    get_storage().delete_prefix(job.storage_prefix)
    db.session.delete(job)
    db.session.commit()


def list_jobs(user: User, query):
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
                              .order_by(TrainingJob.created_at.desc(), TrainingJob.id.desc())
                              .limit(query.per_page).offset((query.page - 1) * query.per_page)).all()
    return rows, total

