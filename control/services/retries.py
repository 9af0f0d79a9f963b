"""Retrying a finished job: a new job with the failure's suggested fix and single overrides,
the changes it makes listed (``batch_size: 4 → 2``), linked to and counted on the old one."""
from __future__ import annotations

from control.extensions import db
from control.models import TrainingJob, User
from control.schemas import CreateJob, RetryJob
from control.services import audit
from control.services.exceptions import JobStateError
from control.services.training_jobs import create


def retry_request(job: TrainingJob, req: RetryJob) -> tuple[dict, list[dict]]:
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
            "notes": job.notes, "tags": list(job.tags or []), "start": req.start,
            "evaluation": conf.get("evaluation"), "rubric_id": job.rubric_id}
    body["max_cost_usd"] = req.max_cost_usd or job.max_cost_usd
    if req.max_cost_usd and req.max_cost_usd != job.max_cost_usd:
        changes.append({"field": "max_cost_usd", "from": job.max_cost_usd, "to": req.max_cost_usd,
                        "why": "asked for"})
    if not req.from_checkpoint_step and conf.get("continue_from"):
        body["continue_from"] = conf["continue_from"]       # a retry of a continuation continues too
    if req.from_checkpoint_step:
        body["continue_from"] = {"job_id": job.id, "step": req.from_checkpoint_step}
        changes.append({"field": "continue_from", "from": None,
                        "to": f"{job.id} step {req.from_checkpoint_step}", "why": "asked for"})
    return {k: v for k, v in body.items() if v is not None}, changes


def retry(user: User, job: TrainingJob, req: RetryJob) -> tuple[TrainingJob, list[dict]]:
    """A new job from a finished one, with the changes listed (``batch_size: 4 → 2``)."""
    if not job.is_final:
        raise JobStateError(job, "retry", "only a finished job (completed, failed or cancelled) can be retried")
    body, changes = retry_request(job, req)
    new = create(user, CreateJob.model_validate(body), keep_rubric=True)   # an archived rubric stays with its jobs
    record_retry(job, new)
    return new, changes


def record_retry(source: TrainingJob, new: TrainingJob) -> None:
    """``new`` repeats ``source``: linked to it, and counted on it; the trail says who
    retried it (``new``'s creator). Commits."""
    new.retried_from_id = source.id
    source.retry_count = (source.retry_count or 0) + 1
    audit.record("job.retried", actor=db.session.get(User, new.created_by), target_type="job",
                 target_id=source.id, job_id=source.id, details={"new_job_id": new.id})
    db.session.commit()
