"""Training jobs: settle their settings, estimate them, create, list and delete them.

Starting, cancelling and everything after are the lifecycle's (``lifecycle.py``).
"""
from __future__ import annotations

import json
from dataclasses import dataclass

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from control.extensions import db
from control.models import JobStatus, TrainingFile, TrainingJob, User, new_id
from control.schemas import CreateJob, EvaluationRequest, JobListQuery
from control.services import admission, audit, base_models, gpu_routes, quotas, rubrics, templates
from control.services.checkpoints import continue_point
from control.services.exceptions import BudgetExceeded, Forbidden, JobStateError, QuotaExceeded
from control.services.storage import get_storage
from control.services.training_files import ready_file
from shared import cost
from shared.errors import ConfigError, Problem
from shared.job_input import CheckpointSettings, Hyperparameters
from shared.storage.layout import JobLayout


@dataclass(frozen=True)
class JobSettings:
    """What a job trains with, once this deployment's defaults are filled in."""

    hyperparameters: Hyperparameters
    checkpoint_every_steps: int
    base_model: str
    method: str
    gpu_type: str


def resolve_settings(preset: str, overrides: dict, base_model: str | None, method: str | None,
                     gpu_type: str | None) -> JobSettings:
    """A preset with single overrides, and the defaults this deployment fills in. Raises
    ``ConfigError`` naming the setting, and for a base model not on this deployment's list
    (``base_models.py``) one that lists the allowed values."""
    overrides = dict(overrides)
    every = overrides.pop("checkpoint_every_steps", None) or CheckpointSettings.model_fields["every_steps"].default
    hp = Hyperparameters.for_preset(preset, overrides)
    cfg = current_app.config
    gpu_type = gpu_type or cfg["DEFAULT_GPU_TYPE"]
    if gpu_type not in gpu_routes.catalog():
        raise ConfigError([Problem("gpu", f"unknown GPU type {gpu_type!r}: expected one of "
                                   + ", ".join(gpu_routes.catalog()), "gpu.type")])
    base_model = base_models.require_allowed(base_model or cfg["DEFAULT_BASE_MODEL"])
    return JobSettings(hp, every, base_model, method or cfg["DEFAULT_METHOD"], gpu_type)


def estimate_for(training_file: TrainingFile, settings: JobSettings, pricing: str) -> cost.Estimate:
    """Cost and duration of training ``training_file`` with ``settings``."""
    stats, hp = training_file.statistics, settings.hyperparameters
    return cost.estimate(tokens=stats["tokens"]["folded"], trainable_pairs=stats["trainable_pairs"],
                         num_epochs=hp.num_epochs, targets_per_step=hp.targets_per_step,
                         base_model=settings.base_model, method=settings.method,
                         gpu_type=settings.gpu_type, pricing=pricing, max_steps=hp.max_steps,
                         lora_r=hp.lora_r, catalog=gpu_routes.catalog())


def create(user: User, req: CreateJob, *, keep_rubric: bool = False) -> TrainingJob:
    """A pending job from a validated request (started too if it says ``start``), within the
    user's quotas (``quotas.py``: a refusal stores nothing). Commits."""
    if req.template_id is not None:
        req = templates.apply(user, req)          # the template's settings under the request's own
    training_file = ready_file(user, req.training_file_id)
    evaluation = evaluation_settings(user, req.evaluation)
    rubric_id = rubrics.pickable(req.rubric_id, archived_too=keep_rubric)
    overrides = req.hyperparameters.model_dump(exclude_none=True)
    settings = resolve_settings(req.preset, overrides, req.base_model, req.method, req.gpu.type)
    hp = settings.hyperparameters
    endpoint_id = gpu_routes.endpoint_for(settings.gpu_type, req.gpu.pricing)
    est = estimate_for(training_file, settings, req.gpu.pricing)
    job_id = new_id("tj")
    init_from, source = None, None
    if req.continue_from is not None:
        source, init_from = continue_point(user, req.continue_from.job_id, req.continue_from.step,
                                           settings.base_model, settings.method, hp)
    if req.start:
        quotas.check_active(user.id)             # refuse before storing anything
    quotas.take_hourly(user)
    job = TrainingJob(
        id=job_id, training_file_id=training_file.id,
        name=req.name or f"{training_file.filename} · {req.preset}",
        description=req.description, notes=req.notes, tags=list(req.tags), preset=req.preset,
        base_model=settings.base_model, method=settings.method, gpu_type=settings.gpu_type,
        gpu_pricing_tier=req.gpu.pricing,
        configuration={"hyperparameters": hp.model_dump(mode="json"),
                       "overrides": overrides, "checkpoint_every_steps": settings.checkpoint_every_steps,
                       "gpu": {"type": settings.gpu_type, "pricing": req.gpu.pricing,
                               "price_per_hour": est.price_per_hour, "endpoint_id": endpoint_id},
                       "base_model": settings.base_model, "method": settings.method,
                       "estimate": est.to_dict(), "evaluation": evaluation,
                       **({"init_from": init_from,
                           "continue_from": {"job_id": source.id, "step": req.continue_from.step}}
                          if init_from else {})},
        cost_estimate=est.cost_usd, estimated_duration_minutes=est.duration_minutes,
        storage_prefix=JobLayout.for_job(job_id).prefix, status=JobStatus.PENDING, created_by=user.id,
        retried_from_id=source.id if source else None, rubric_id=rubric_id, max_cost_usd=req.max_cost_usd,
        template_id=req.template_id)
    db.session.add(job)
    if not req.start:
        _audit_created(user, job)
    db.session.commit()
    if req.start:
        override = req.budget_override.model_dump() if req.budget_override else None
        try:
            _audit_created(user, job)        # committed with the start, or rolled back with its refusal
            admission.start(job, by=user, budget_override=override)
        except (QuotaExceeded, BudgetExceeded, Forbidden):  # refused (an override not an admin's): nothing is kept
            db.session.rollback()
            db.session.delete(job)
            db.session.commit()
            raise
    return job


def _audit_created(user: User, job: TrainingJob) -> None:
    audit.record("job.created", actor=user, target_type="job", target_id=job.id, job_id=job.id,
                 details={"name": job.name, "preset": job.preset})


def evaluation_settings(user: User, req: EvaluationRequest) -> dict:
    """A job's (or a re-evaluation's) evaluation settings, its prompts file checked ready."""
    if req.prompts_file_id is not None:
        ready_file(user, req.prompts_file_id, purpose="evaluation")
    return req.model_dump(mode="json")


def delete(job: TrainingJob, by: User | None = None) -> None:
    """Delete a job that is not running, with everything it stored (``by``: who, for the
    audit trail, which keeps the job's entries). Commits."""
    if job.status not in JobStatus.deletable():
        raise JobStateError(job, "delete", "cancel it first")
    continuing = [j.id for j in db.session.scalars(select(TrainingJob).where(
        TrainingJob.retried_from_id == job.id, TrainingJob.status.not_in(JobStatus.FINAL)))
        if (j.configuration or {}).get("init_from")]
    if continuing:
        raise JobStateError(job, "delete", f"job {continuing[0]} continues from its checkpoints; "
                            "wait for it to finish")
    get_storage().delete_prefix(job.storage_prefix)
    audit.record("job.deleted", actor=by, target_type="job", target_id=job.id, job_id=job.id,
                 details={"name": job.name, "status": job.status})
    db.session.delete(job)
    db.session.commit()


SORTS = {
    "newest": (TrainingJob.created_at.desc(), TrainingJob.id.desc()),
    "oldest": (TrainingJob.created_at.asc(), TrainingJob.id.asc()),
    "name": (db.func.lower(TrainingJob.name).asc(), TrainingJob.id.asc()),
    "status": (TrainingJob.status.asc(), TrainingJob.created_at.desc()),
    "cost": (TrainingJob.actual_cost.desc(), TrainingJob.created_at.desc()),
    "progress": (TrainingJob.progress_percentage.desc(), TrainingJob.created_at.desc()),
    # Nulls last on every database: a job without a duration or a gain sorts after the rest.
    "duration": (TrainingJob.actual_duration_minutes.is_(None), TrainingJob.actual_duration_minutes.desc(),
                 TrainingJob.created_at.desc(), TrainingJob.id.desc()),
    "perplexity_gain": (TrainingJob.perplexity_gain_pct.is_(None), TrainingJob.perplexity_gain_pct.desc(),
                        TrainingJob.created_at.desc(), TrainingJob.id.desc()),
}


def list_jobs(user: User, query: JobListQuery) -> tuple[list[TrainingJob], int]:
    """A page of the jobs ``user`` may see, filtered and sorted as ``query`` says, and how
    many match in all."""
    stmt = matching(user, query)
    total = db.session.scalar(select(db.func.count()).select_from(stmt.subquery()))
    rows = db.session.scalars(stmt.options(selectinload(TrainingJob.attempts))
                              .order_by(*SORTS[query.sort])
                              .limit(query.per_page).offset((query.page - 1) * query.per_page)).all()
    return rows, total


def _between(column, low: float | None, high: float | None):
    """``low <= column <= high``, either end open when None."""
    return db.and_(*([column >= low] if low is not None else []), *([column <= high] if high is not None else []))


def matching(user: User, query: JobListQuery):
    """The jobs ``user`` may see that ``query``'s filters keep, as a statement (unsorted)."""
    stmt = select(TrainingJob)
    if query.for_review:
        if not user.can_review:
            raise Forbidden("the list of jobs waiting for review is for reviewers and admins")
        stmt = stmt.where(TrainingJob.status == JobStatus.COMPLETED, TrainingJob.delivery_status.is_(None))
    elif not user.is_admin:
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
        tags = db.cast(TrainingJob.tags, db.String)     # the tags' JSON text (SQLite escapes non-ASCII)
        stmt = stmt.where(TrainingJob.name.ilike(like) | TrainingJob.notes.ilike(like)
                          | TrainingJob.description.ilike(like)
                          | db.or_(*(tags.icontains(t, autoescape=True)
                                     for t in sorted({query.q, json.dumps(query.q)[1:-1]}))))
    if query.delivery == "none":
        stmt = stmt.where(TrainingJob.delivery_status.is_(None))
    elif query.delivery == "not_approved":
        stmt = stmt.where(TrainingJob.delivery_status.is_(None) | (TrainingJob.delivery_status != "approved"))
    elif query.delivery:
        stmt = stmt.where(TrainingJob.delivery_status == query.delivery)
    if query.tag:
        # JSON containment differs by database: match the quoted tag in the list's text, as
        # Postgres (JSONB) and SQLite (JSON, non-ASCII escaped) write it, wildcards literal.
        text = db.cast(TrainingJob.tags, db.String)
        quoted = {json.dumps(query.tag, ensure_ascii=False), json.dumps(query.tag)}
        stmt = stmt.where(db.or_(*(text.icontains(q, autoescape=True) for q in sorted(quoted))))
    if query.training_file_id:
        stmt = stmt.where(TrainingJob.training_file_id == query.training_file_id)
    if query.cost_min is not None or query.cost_max is not None:
        stmt = stmt.where(_between(TrainingJob.actual_cost, query.cost_min, query.cost_max))
    if query.duration_min is not None or query.duration_max is not None:
        stmt = stmt.where(_between(TrainingJob.actual_duration_minutes, query.duration_min, query.duration_max))
    return stmt
