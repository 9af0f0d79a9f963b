"""Job templates: a named job configuration (preset, hyperparameter overrides, GPU type and
pricing tier, base model, method, evaluation settings, rubric, spend cap) that the whole
team sees and starts new jobs from.

A template is saved from a job (the settings it ran with) or from an explicit configuration
(``TemplateConfiguration``, a job request's settings); its creator or an admin renames or
deletes it. A job request with ``template_id`` takes the template's value for every setting
it does not give itself (``apply``), and the job keeps ``template_id``.

Each template counts the jobs started from it (``uses``) and, of those with a measured
perplexity gain (``evaluated``), how many met the documents' target
(``shared.evaluation.targets.PERPLEXITY_IMPROVEMENT_PCT``); ``preset_shares`` is the same
share for every preset, over all the team's jobs.
"""
from __future__ import annotations

from pydantic import ValidationError
from sqlalchemy import case, func, select
from sqlalchemy.exc import IntegrityError

from control.extensions import db
from control.models import JobTemplate, TrainingJob, User, new_id
from control.schemas import CreateJob
from control.schemas.templates import CONFIGURATION_FIELDS, EditTemplate, TemplateConfiguration
from control.services import audit, base_models, gpu_routes, rubrics
from control.services.access import visible_file
from control.services.exceptions import Conflict, Forbidden, NotFound
from shared.errors import ConfigError, Problem
from shared.evaluation.targets import PERPLEXITY_IMPROVEMENT_PCT
from shared.job_input import Hyperparameters
from shared.presets import PRESETS
from shared.validation import problems_from

#: The settings that merge key by key (a request's ``{"gpu": {"pricing": "spot"}}`` keeps the
#: template's GPU type); every other setting the request gives replaces the template's.
NESTED = ("hyperparameters", "gpu", "evaluation")


# ------------------------------------------------------------------ what a template holds

def configuration_of(job: TrainingJob) -> dict:
    """The settings ``job`` ran with, as a template holds them (as a retry rebuilds them,
    ``retries.retry_request``): its preset and single overrides, GPU and tier, base model,
    method, evaluation, rubric and spend cap."""
    conf = job.configuration or {}
    return normalised({"preset": job.preset, "hyperparameters": dict(conf.get("overrides") or {}),
                       "base_model": job.base_model, "method": job.method,
                       "gpu": {"type": job.gpu_type, "pricing": job.gpu_pricing_tier},
                       "evaluation": conf.get("evaluation") or {}, "rubric_id": job.rubric_id,
                       "max_cost_usd": job.max_cost_usd})


def normalised(values: dict) -> dict:
    """``values`` as a ``TemplateConfiguration`` holds them, unset settings left out; a
    ``ConfigError`` names any that is not a job request's.

    >>> normalised({"preset": "aggressive", "hyperparameters": {"lora_r": 8}, "gpu": {"pricing": "on_demand"}})
    {'preset': 'aggressive', 'hyperparameters': {'lora_r': 8}, 'gpu': {'pricing': 'on_demand'}, 'evaluation': {'max_new_tokens': 256}}
    """
    try:
        config = TemplateConfiguration.model_validate(values, strict=False)
    except ValidationError as exc:
        raise ConfigError(problems_from(exc, "configuration")) from None
    return config.model_dump(mode="json", exclude_none=True)


def _under(prefix: str, problems: list[Problem]) -> list[Problem]:
    return [Problem(p.where, p.message, f"{prefix}{p.field}" if p.field else prefix.rstrip(".") or None)
            for p in problems]


def check(user: User, config: dict, prefix: str = "configuration.") -> None:
    """What the schema cannot say, as a job's creation would find it: a GPU type in the
    catalogue, a base model on this deployment's list, a rubric that new jobs may pick, the
    overrides valid with the preset, the evaluation's prompts file one of the user's. Every
    problem at once, each naming its field under ``prefix``."""
    problems: list[Problem] = []
    gpu_type = (config.get("gpu") or {}).get("type")
    if gpu_type is not None and gpu_type not in gpu_routes.catalog():
        problems.append(Problem("gpu", f"unknown GPU type {gpu_type!r}: expected one of "
                                + ", ".join(gpu_routes.catalog()), f"{prefix}gpu.type"))
    overrides = {k: v for k, v in (config.get("hyperparameters") or {}).items() if k != "checkpoint_every_steps"}
    checks = [(base_models.require_allowed, config.get("base_model"), ""),
              (rubrics.pickable, config.get("rubric_id"), ""),
              (lambda preset: Hyperparameters.for_preset(preset, overrides), config.get("preset"),
               "hyperparameters.")]
    for step, value, under in checks:
        if value is None:
            continue
        try:
            step(value)
        except ConfigError as exc:
            problems += _under(prefix + under, exc.problems)
    prompts = (config.get("evaluation") or {}).get("prompts_file_id")
    if prompts is not None:
        try:
            visible_file(user, prompts)
        except NotFound:
            problems.append(Problem("evaluation", f"no training file {prompts!r} of yours",
                                    f"{prefix}evaluation.prompts_file_id"))
    if problems:
        raise ConfigError(problems)


# ------------------------------------------------------------------ saving and changing

def get(template_id: str) -> JobTemplate:
    row = db.session.get(JobTemplate, template_id)
    if row is None:
        raise NotFound("template", template_id)
    return row


def find(template_id: str | None) -> JobTemplate | None:
    """The template, or None (none given, or deleted since)."""
    return db.session.get(JobTemplate, template_id) if template_id else None


def _duplicate(name: str) -> Conflict:
    return Conflict(f"a template named {name!r} already exists: choose another name", code="duplicate")


def _commit_named(name: str) -> None:
    try:
        db.session.commit()
    except IntegrityError:                   # the same name saved at the same moment
        db.session.rollback()
        raise _duplicate(name) from None


def create(user: User, name: str, description: str | None, configuration: dict,
           source: TrainingJob | None = None) -> JobTemplate:
    """A new template (its name unique across the team), recorded on the audit trail. Commits."""
    if db.session.scalar(select(JobTemplate.id).where(JobTemplate.name == name)) is not None:
        raise _duplicate(name)
    row = JobTemplate(id=new_id("tpl"), name=name, description=description, configuration=configuration,
                      source_job_id=source.id if source else None, created_by=user.id)
    db.session.add(row)
    audit.record("template.created", actor=user, target_type="template", target_id=row.id,
                 job_id=source.id if source else None,
                 details={"name": name, "source_job_id": row.source_job_id, "configuration": configuration})
    _commit_named(name)
    return row


def save_job(user: User, job: TrainingJob, name: str, description: str | None) -> JobTemplate:
    """A template of the settings ``job`` ran with (the caller checked the user sees it)."""
    return create(user, name, description, configuration_of(job), source=job)


def create_from(user: User, name: str, description: str | None, configuration: TemplateConfiguration) -> JobTemplate:
    """A template of an explicit configuration, checked as a job's creation would check it."""
    config = configuration.model_dump(mode="json", exclude_none=True)
    check(user, config)
    return create(user, name, description, config)


def _may_change(user: User, row: JobTemplate, verb: str) -> None:
    if row.created_by != user.id and not user.is_admin:
        raise Forbidden(f"only the template's creator or an admin can {verb} template {row.name!r}")


def edit(user: User, template_id: str, req: EditTemplate) -> JobTemplate:
    """A new name or description (creator or admin); the change is on the audit trail. Commits."""
    row = get(template_id)
    _may_change(user, row, "change")
    given = req.model_dump(include=req.model_fields_set)
    changes: dict = {}
    if "name" in given and given["name"] != row.name:
        if db.session.scalar(select(JobTemplate.id).where(JobTemplate.name == given["name"])) is not None:
            raise _duplicate(given["name"])
        changes["name"] = {"from": row.name, "to": given["name"]}
        row.name = given["name"]
    if "description" in given and given["description"] != row.description:
        changes["description"] = {"from_chars": len(row.description or ""), "to_chars": len(given["description"] or "")}
        row.description = given["description"]
    if changes:
        audit.record("template.changed", actor=user, target_type="template", target_id=row.id,
                     details={"fields": list(changes), "changes": changes})
        _commit_named(row.name)
    return row


def delete(user: User, template_id: str) -> JobTemplate:
    """Delete a template (creator or admin); the jobs started from it keep their settings and
    its id. Commits."""
    row = get(template_id)
    _may_change(user, row, "delete")
    audit.record("template.deleted", actor=user, target_type="template", target_id=row.id,
                 details={"name": row.name, "uses": uses_of([row.id]).get(row.id, {}).get("uses", 0)})
    db.session.delete(row)
    db.session.commit()
    return row


# ------------------------------------------------------------------ starting a job from one

def merge(template: dict, given: dict) -> dict:
    """A job request: the template's settings under the ones the request gave (``given``,
    what it set explicitly); hyperparameters, gpu and evaluation merge key by key.

    >>> merge({"preset": "aggressive", "hyperparameters": {"lora_r": 8, "num_epochs": 2},
    ...        "gpu": {"type": "A100_80GB", "pricing": "on_demand"}, "max_cost_usd": 5.0},
    ...       {"training_file_id": "f", "hyperparameters": {"num_epochs": 5}, "gpu": {"pricing": "spot"},
    ...        "max_cost_usd": None})
    {'preset': 'aggressive', 'hyperparameters': {'lora_r': 8, 'num_epochs': 5}, 'gpu': {'type': 'A100_80GB', 'pricing': 'spot'}, 'max_cost_usd': None, 'training_file_id': 'f'}
    """
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in template.items() if k in CONFIGURATION_FIELDS}
    for key, value in given.items():
        if key in NESTED and isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = {**out[key], **value}
        else:
            out[key] = value
    return out


def apply(user: User, req: CreateJob) -> CreateJob:
    """``req`` with its template's settings filled in where it gives none (an unknown
    template: 404 naming it). A template's setting that no longer holds (an archived rubric,
    a base model taken off the list) is refused when the job is created, naming the field:
    give that field in the request to override it."""
    row = get(req.template_id)
    given = req.model_dump(exclude_unset=True)
    body = merge(row.configuration or {}, given)
    prompts = (body.get("evaluation") or {}).get("prompts_file_id")
    if prompts and "prompts_file_id" not in (given.get("evaluation") or {}):
        try:
            visible_file(user, prompts)
        except NotFound:
            raise ConfigError([Problem("template", f"template {row.name!r} evaluates on prompts file "
                                       f"{prompts!r}, which is not yours: give evaluation.prompts_file_id "
                                       "(one of your evaluation files, or null)",
                                       "evaluation.prompts_file_id")]) from None
    try:
        return CreateJob.model_validate(body)
    except ValidationError as exc:           # a template saved under older rules
        raise ConfigError(problems_from(exc, f"template {row.name!r}")) from None


# ------------------------------------------------------------------ how well they did

def shares(evaluated: int, met: int) -> dict:
    """Of the jobs with a measured perplexity gain, how many met the target, and the share.

    >>> shares(3, 2), shares(0, 0)["share_met_target"]
    ({'evaluated': 3, 'met_target': 2, 'share_met_target': 0.6667}, None)
    """
    return {"evaluated": evaluated, "met_target": met,
            "share_met_target": round(met / evaluated, 4) if evaluated else None}


def _counts():
    met = func.sum(case((TrainingJob.perplexity_gain_pct >= PERPLEXITY_IMPROVEMENT_PCT, 1), else_=0))
    return func.count(TrainingJob.id), func.count(TrainingJob.perplexity_gain_pct), met


def uses_of(template_ids: list[str]) -> dict[str, dict]:
    """Per template: the jobs started from it, and how many of them met the target."""
    if not template_ids:
        return {}
    rows = db.session.execute(select(TrainingJob.template_id, *_counts())
                              .where(TrainingJob.template_id.in_(template_ids))
                              .group_by(TrainingJob.template_id))
    return {tid: {"uses": uses, **shares(evaluated, int(met or 0))} for tid, uses, evaluated, met in rows}


def preset_shares() -> list[dict]:
    """Per preset, over all the team's jobs: how many, and the share that met the target."""
    found = {preset: (jobs, evaluated, int(met or 0)) for preset, jobs, evaluated, met in db.session.execute(
        select(TrainingJob.preset, *_counts()).group_by(TrainingJob.preset))}
    return [{"preset": name, "jobs": found.get(name, (0, 0, 0))[0], **shares(*found.get(name, (0, 0, 0))[1:])}
            for name in PRESETS]


def _views(rows: list[JobTemplate]) -> list[dict]:
    counts = uses_of([r.id for r in rows])
    emails = dict(db.session.execute(select(User.id, User.email).where(
        User.id.in_({r.created_by for r in rows}))).all()) if rows else {}
    empty = {"uses": 0, **shares(0, 0)}
    return [{**r.to_dict(), "created_by_email": emails.get(r.created_by), **counts.get(r.id, empty)}
            for r in rows]


def view(row: JobTemplate) -> dict:
    """One template as the API shows it: with its creator's email and its use counts."""
    return _views([row])[0]


def listing(page: int = 1, per_page: int = 50) -> tuple[list[dict], int]:
    """A page of the team's templates by name, and how many there are."""
    total = db.session.scalar(select(func.count(JobTemplate.id)))
    rows = list(db.session.scalars(select(JobTemplate).order_by(func.lower(JobTemplate.name), JobTemplate.id)
                                   .limit(per_page).offset((page - 1) * per_page)))
    return _views(rows), total


def target_pct() -> float:
    """The perplexity target the shares count against (% better than the base model)."""
    return PERPLEXITY_IMPROVEMENT_PCT
