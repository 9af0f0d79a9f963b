"""The new-job form: its fields, to and from the API's ``CreateJob`` request.

The form is text; ``parse`` turns it into the one request schema the JSON API validates,
so the console and the API accept exactly the same jobs, and every problem comes back
keyed by the form field that caused it.
"""
from __future__ import annotations

from pydantic import ValidationError

from control.schemas import CreateJob, EvaluationRequest, HyperparameterOverrides
from shared.errors import ProblemsError
from shared.job_input import request_setting

# Single settings the advanced section may override (those of the request schema), with the
# input's step: whole numbers step by 1.
OVERRIDES = {name: "1" if request_setting(name).type is int else "any"
             for name in HyperparameterOverrides.model_fields}
TEXT_FIELDS = ("training_file_id", "preset", "gpu_type", "pricing", "base_model", "method",
               "name", "description", "notes", "tags",
               "retry_of", "continue_step",   # a retry, and the checkpoint step it continues from
               "eval_size", "max_new_tokens", "prompts_file_id",   # the evaluation
               "rubric_id",                                         # its brand-voice rubric
               "max_cost_usd", "budget_override_reason",            # its spend cap; an admin's override
               "template_id")                                       # the template it starts from


def values_from_form(form) -> dict:
    """The form's values as submitted (strings), for re-showing the form."""
    keys = TEXT_FIELDS + tuple(OVERRIDES)
    return {k: (form.get(k) or "").strip() for k in keys}


def parse(values: dict, start: bool = True) -> tuple[CreateJob | None, dict[str, str]]:
    """A ``CreateJob`` request, or the problems keyed by form field.

    >>> req, errors = parse({"training_file_id": "file_1", "preset": "balanced", "batch_size": "2",
    ...                      "pricing": "spot", "tags": "anxious, retirement"})
    >>> errors, req.hyperparameters.batch_size, req.tags
    ({}, 2, ['anxious', 'retirement'])
    >>> req, _ = parse({"training_file_id": "file_1", "eval_size": "quick", "max_new_tokens": "64",
    ...                 "rubric_id": "rub_acme"})
    >>> req.evaluation.size, req.evaluation.max_new_tokens, req.rubric_id
    ('quick', 64, 'rub_acme')
    >>> parse({"training_file_id": "file_1", "max_new_tokens": "0"})[1]
    {'max_new_tokens': 'Input should be greater than or equal to 1'}
    >>> parse({"training_file_id": "", "preset": "wild", "batch_size": "two", "pricing": "spot"})[1]
    {'training_file_id': 'choose a training file', 'preset': "Input should be 'conservative', 'balanced' or 'aggressive'", 'batch_size': 'Input should be a valid integer, unable to parse string as an integer'}
    """
    errors: dict[str, str] = {}
    if not values.get("training_file_id"):
        errors["training_file_id"] = "choose a training file"
    body: dict = {
        "training_file_id": values.get("training_file_id") or "-",
        "preset": values.get("preset") or "balanced",
        "hyperparameters": {k: values[k] for k in OVERRIDES if values.get(k)},
        "gpu": {"pricing": values.get("pricing") or "spot"},
        "tags": [t.strip() for t in (values.get("tags") or "").split(",") if t.strip()],
        "start": start,
    }
    if values.get("gpu_type"):
        body["gpu"]["type"] = values["gpu_type"]
    for key in ("base_model", "method", "name", "description", "notes", "rubric_id"):
        if values.get(key):
            body[key] = values[key]
    body["evaluation"] = {"size": values.get("eval_size") or None,
                          "prompts_file_id": values.get("prompts_file_id") or None}
    if values.get("max_new_tokens"):
        body["evaluation"]["max_new_tokens"] = values["max_new_tokens"]
    if values.get("max_cost_usd"):
        body["max_cost_usd"] = values["max_cost_usd"]
    if values.get("budget_override_reason"):
        body["budget_override"] = {"reason": values["budget_override_reason"]}
    if values.get("retry_of") and values.get("continue_step"):
        body["continue_from"] = {"job_id": values["retry_of"], "step": values["continue_step"]}
    if values.get("template_id"):
        from_template(body, values)
    try:
        req = CreateJob.model_validate(body, strict=False)
    except ValidationError as exc:
        for err in exc.errors():
            errors.setdefault(field_of(err.get("loc", ())), err.get("msg", "invalid"))
        return None, errors
    return (None, errors) if errors else (req, {})


def from_template(body: dict, values: dict) -> None:
    """A form started from a template shows all of the template's settings: what the form
    leaves empty is the preset's or the default, not the template's, so it says so.

    >>> body = {"hyperparameters": {"lora_r": "8"}, "evaluation": {}}
    >>> from_template(body, {"template_id": "tpl_1", "lora_r": "8"})
    >>> body["template_id"], body["hyperparameters"]["lora_r"], body["hyperparameters"]["num_epochs"], body["max_cost_usd"]
    ('tpl_1', '8', None, None)
    """
    body["template_id"] = values["template_id"]
    body["hyperparameters"] = {k: values.get(k) or None for k in OVERRIDES}
    for key in ("base_model", "method", "rubric_id", "max_cost_usd"):
        body[key] = values.get(key) or None
    body["evaluation"].setdefault("max_new_tokens", EvaluationRequest.model_fields["max_new_tokens"].default)


def values_from_template(template, values: dict) -> dict:
    """A template's settings as form values, over ``values`` (the form's defaults, a file)."""
    conf = template.configuration or {}
    gpu, evaluation = conf.get("gpu") or {}, conf.get("evaluation") or {}
    values = dict(values)
    values.update({k: "" for k in OVERRIDES})
    values.update({k: str(v) for k, v in (conf.get("hyperparameters") or {}).items() if k in OVERRIDES and v is not None})
    values.update(template_id=template.id, preset=conf.get("preset") or values.get("preset") or "balanced",
                  gpu_type=gpu.get("type") or values.get("gpu_type") or "", pricing=gpu.get("pricing") or "spot",
                  base_model=conf.get("base_model") or "", method=conf.get("method") or "",
                  rubric_id=conf.get("rubric_id") or "", eval_size=evaluation.get("size") or "",
                  prompts_file_id=evaluation.get("prompts_file_id") or "",
                  max_new_tokens=str(evaluation["max_new_tokens"]) if evaluation.get("max_new_tokens") else "",
                  max_cost_usd=f"{conf['max_cost_usd']:g}" if conf.get("max_cost_usd") else "")
    return values


def field_of(loc) -> str:
    """The form field behind a schema location.

    >>> field_of(("hyperparameters", "batch_size")), field_of(("gpu", "type")), field_of(("tags", 2))
    ('batch_size', 'gpu_type', 'tags')
    """
    loc = [str(p) for p in loc]
    if loc[:1] == ["budget_override"]:
        return "budget_override_reason"
    if loc[:2] == ["gpu", "type"]:
        return "gpu_type"
    if loc[:1] == ["gpu"]:
        return "pricing"
    if loc[:1] == ["continue_from"]:
        return "continue_step"
    if loc[:1] == ["evaluation"] and len(loc) > 1:
        return {"size": "eval_size"}.get(loc[1], loc[1])
    if loc[:1] in (["hyperparameters"], ["tags"]) and len(loc) > 1:
        return loc[1] if loc[0] == "hyperparameters" else "tags"
    return loc[0] if loc else "form"


def problems_by_field(exc: ProblemsError) -> dict[str, str]:
    """A ``ConfigError``'s problems keyed by form field (``hyperparameters.lora_r`` -> ``lora_r``)."""
    out = {}
    for p in exc.problems:
        name = (p.field or p.where or "form").split(".")[-1]
        name = {"type": "gpu_type", "pricing": "pricing", "hyperparameters": "form",
                "step": "continue_step", "continue_from": "continue_step"}.get(name, name)
        out.setdefault(name, p.message)
    return out


def values_from_job(job, adjust: bool = False, continue_step: int | None = None) -> dict:
    """A finished job's settings as form values: a retry starts from what it ran with, with
    the failure's suggested adjustment (``adjust``), or continues from a checkpoint."""
    conf = job.configuration or {}
    overrides = dict(conf.get("overrides") or {})
    if adjust and job.error_adjustment:
        overrides.update(job.error_adjustment)
    values = {k: "" for k in TEXT_FIELDS + tuple(OVERRIDES)}
    values.update({k: str(v) for k, v in overrides.items() if k in OVERRIDES and v is not None})
    if conf.get("checkpoint_every_steps") and conf["checkpoint_every_steps"] != 100:
        values["checkpoint_every_steps"] = str(conf["checkpoint_every_steps"])
    values.update(training_file_id=job.training_file_id, preset=job.preset, gpu_type=job.gpu_type,
                  pricing=job.gpu_pricing_tier, base_model=job.base_model, method=job.method,
                  name=f"{job.name} (retry)"[:200], description=job.description or "",
                  notes=job.notes or "", tags=", ".join(job.tags or []), retry_of=job.id,
                  continue_step=str(continue_step) if continue_step else "", rubric_id=job.rubric_id or "")
    evaluation = conf.get("evaluation") or {}
    values.update(eval_size=evaluation.get("size") or "", prompts_file_id=evaluation.get("prompts_file_id") or "",
                  max_new_tokens=str(evaluation["max_new_tokens"]) if evaluation.get("max_new_tokens") else "")
    return values
