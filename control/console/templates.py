"""Job templates in the console: the team's list (``/templates``: each template's settings,
creator, how many jobs started from it and the share of those that met the perplexity
target, the same share per preset, and delete for its creator or an admin), and saving a
job's settings as one from its page (``/jobs/<id>/template``). A new job starts from one
on the new-job form (``/jobs/new?template=<id>``, ``new_job.py``)."""
from __future__ import annotations

from flask import flash, g, redirect, render_template, request, url_for
from pydantic import ValidationError

from control.console.blueprint import bp
from control.schemas.templates import SaveJobAsTemplate
from control.services import templates
from control.services.access import visible_job
from control.services.exceptions import Conflict
from control.services.formatting import money

PER_PAGE = 50


def settings_text(configuration: dict) -> list[str]:
    """A template's settings in a few words each, for the list and the save page.

    >>> settings_text({"preset": "aggressive", "hyperparameters": {"learning_rate": 0.0005, "lora_r": 32},
    ...                "gpu": {"type": "H100_PCIE", "pricing": "on_demand"}, "base_model": "embedded",
    ...                "method": "lora", "evaluation": {"size": "quick", "max_new_tokens": 256},
    ...                "max_cost_usd": 12.5})
    ['aggressive preset', 'learning_rate 0.0005, lora_r 32', 'H100_PCIE, on demand', 'embedded (lora)', 'quick evaluation, answers of at most 256 tokens', 'spend cap $12.50']
    """
    c = configuration or {}
    gpu, evaluation = c.get("gpu") or {}, c.get("evaluation") or {}
    out = [f"{c.get('preset', 'balanced')} preset"]
    if c.get("hyperparameters"):
        out.append(", ".join(f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}"
                             for k, v in sorted(c["hyperparameters"].items())))
    out.append(f"{gpu.get('type') or 'the default GPU'}, {(gpu.get('pricing') or 'spot').replace('_', ' ')}")
    if c.get("base_model") or c.get("method"):
        out.append(f"{c.get('base_model') or 'the default model'} ({c.get('method') or 'default method'})")
    out.append(f"{evaluation.get('size') or 'default'} evaluation, answers of at most "
               f"{evaluation.get('max_new_tokens', 256)} tokens"
               + (", own prompts" if evaluation.get("prompts_file_id") else ""))
    if c.get("rubric_id"):
        out.append(f"rubric {c['rubric_id']}")
    if c.get("max_cost_usd"):
        out.append(f"spend cap {money(c['max_cost_usd'])}")
    return out


@bp.app_template_filter("share_pct")
def share_pct(value: float | None) -> str:
    """
    >>> share_pct(0.6667), share_pct(None)
    ('67%', '—')
    """
    return "—" if value is None else f"{100 * value:.0f}%"


@bp.get("/templates")
def template_list():
    page = max(1, min(request.args.get("page", 1, type=int) or 1, 10_000))
    rows, total = templates.listing(page, PER_PAGE)
    return render_template("console/templates/list.html", templates=rows, total=total, page=page,
                           pages=max(1, -(-total // PER_PAGE)), presets=templates.preset_shares(),
                           target=templates.target_pct(), settings_text=settings_text)


def _save_page(job, form: dict, errors: dict | None = None, status: int = 200):
    return render_template("console/templates/save.html", job=job, form=form, errors=errors or {},
                           settings=settings_text(templates.configuration_of(job))), status


@bp.route("/jobs/<job_id>/template", methods=["GET", "POST"])
def save_as_template(job_id):
    """Save the job's settings as a named template: the form, then the save; a refusal (a
    name taken, too long) shows the form again with the values kept."""
    job = visible_job(g.user, job_id)
    if request.method == "GET":
        return _save_page(job, {"name": job.name, "description": job.description or ""})
    form = {k: (request.form.get(k) or "").strip() for k in ("name", "description")}
    try:
        req = SaveJobAsTemplate.model_validate({"name": form["name"], "description": form["description"] or None},
                                               strict=False)
    except ValidationError as exc:
        errors = {}
        for err in exc.errors():
            field = str(err["loc"][0]) if err.get("loc") else "name"
            errors.setdefault(field, "give the template a name" if field == "name" and not form["name"]
                              else err.get("msg", "invalid"))
        return _save_page(job, form, errors, 400)
    try:
        row = templates.save_job(g.user, job, req.name, req.description)
    except Conflict as exc:
        return _save_page(job, form, {"name": exc.message}, 409)
    flash(f"Template “{row.name}” saved: the team can start new jobs from it.", "ok")
    return redirect(url_for("console.template_list", _anchor=row.id))


@bp.post("/templates/<template_id>/delete")
def delete_template(template_id):
    row = templates.delete(g.user, template_id)
    flash(f"Template “{row.name}” deleted; the jobs started from it keep their settings.", "ok")
    return redirect(url_for("console.template_list"))
