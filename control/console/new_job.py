"""The new-job flow: the form (empty, for a file, or a retry), the live estimate, the review
of what differs from the preset, then start or save."""
from __future__ import annotations

from flask import current_app, flash, g, jsonify, redirect, render_template, request, url_for

from control.console import job_form
from control.console.blueprint import bp
from control.console.filters import minutes, money
from control.models import TrainingFileStatus, TrainingJob
from control.models.training_file import FilePurpose
from control.services import base_models, gpu_routes, rubrics, templates
from control.services.access import visible_file, visible_files, visible_job
from control.services.exceptions import BudgetExceeded, QuotaExceeded
from control.services.retries import record_retry
from control.services.training_files import FileNotReady, ready_file
from control.services.training_jobs import create, estimate_for, resolve_settings
from shared import cost
from shared.errors import ConfigError
from shared.presets import PRESETS

COST_WARNING_USD = 100.0
PRESET_RISK = {
    "conservative": "Low risk: small updates, least forgetting; may under-learn a large dataset.",
    "balanced": "Moderate risk: the usual choice once a dataset has been checked.",
    "aggressive": "Higher risk: learns fastest but can overfit and forget; read the held-out numbers.",
}


def served_gpus() -> dict:
    """The GPU types some endpoint serves here (``GPU_ENDPOINTS``), at this deployment's prices."""
    served = {choice.split(":")[0] for choice in gpu_routes.served()}
    return {k: g for k, g in gpu_routes.catalog().items() if k in served}


def estimates(values: dict) -> dict:
    """The estimate for the form's choices, and each preset's with the same other choices."""
    req, errors = job_form.parse(values, start=False)
    if req is None:
        return {"errors": errors}
    try:
        training_file = ready_file(g.user, req.training_file_id)
    except FileNotReady as exc:
        return {"errors": {"training_file_id": exc.message}}
    overrides = req.hyperparameters.model_dump(exclude_none=True)
    out: dict = {"errors": {}, "presets": {}}
    try:
        for name in PRESETS:
            settings = resolve_settings(name, overrides, req.base_model, req.method, req.gpu.type)
            est = estimate_for(training_file, settings, req.gpu.pricing)
            out["presets"][name] = {"cost": money(est.cost_usd), "duration": minutes(est.duration_minutes),
                                    "cost_usd": est.cost_usd}
            if name == req.preset:
                out.update(estimate=est.to_dict(), cost=money(est.cost_usd),
                           low=money(est.cost_low_usd), high=money(est.cost_high_usd),
                           duration=minutes(est.duration_minutes), base_model=settings.base_model,
                           method=settings.method, gpu_type=settings.gpu_type,
                           hyperparameters=settings.hyperparameters.model_dump(mode="json"),
                           warning=(f"This job is estimated at {money(est.cost_usd)}, above "
                                    f"{money(COST_WARNING_USD)}. Check the epochs, max steps and GPU."
                                    if est.cost_usd > COST_WARNING_USD else None))
    except ConfigError as exc:
        return {"errors": job_form.problems_by_field(exc)}
    return out


def retry_changes(values: dict, hyperparameters: dict) -> tuple[TrainingJob | None, list]:
    """For a retry: the job it repeats, and what differs from that job's settings."""
    if not values.get("retry_of"):
        return None, []
    old = visible_job(g.user, values["retry_of"])
    before = old.configuration["hyperparameters"]
    changes = [(k, before.get(k), v) for k, v in hyperparameters.items() if before.get(k) != v]
    for field, was, now in (("gpu_type", old.gpu_type, values.get("gpu_type")),
                            ("pricing", old.gpu_pricing_tier, values.get("pricing"))):
        if now and now != was:
            changes.append((field, was, now))
    return old, changes


def _form_page(values: dict, errors: dict | None = None, status: int = 200):
    files = [f for f in visible_files(g.user)      # only ready datasets train
             if f.status == TrainingFileStatus.READY and f.purpose == FilePurpose.FINE_TUNE]
    source = visible_job(g.user, values["retry_of"]) if values.get("retry_of") else None
    est = estimates(values) if values.get("training_file_id") else {"errors": {}}
    template = templates.find(values.get("template_id"))
    return render_template("console/jobs/new.html", values=values, errors=errors or {},
                           files=files, prompt_files=[f for f in visible_files(g.user) if f.status == TrainingFileStatus.READY
                                                      and f.purpose == FilePurpose.EVALUATION],
                           presets=PRESETS, risk=PRESET_RISK, est=est, source=source,
                           template=template, templates=templates.listing(1, 200)[0],
                           gpus=served_gpus(), overrides=job_form.OVERRIDES,
                           base_models=base_models.allowed(), rubrics=rubrics.all_rubrics(),
                           defaults={"base_model": current_app.config["DEFAULT_BASE_MODEL"],
                                     "method": current_app.config["DEFAULT_METHOD"],
                                     "gpu_type": current_app.config["DEFAULT_GPU_TYPE"]}), status


@bp.route("/jobs/new", methods=["GET", "POST"])
def new_job():
    """The form: empty, for a file (``?file=``), a retry of a job (``?from=``), from a template
    (``?template=``, with ``?file=`` too), or re-shown (POST)."""
    if request.method == "POST":
        return _form_page(job_form.values_from_form(request.form))
    values = job_form.values_from_form({})
    values.update(preset="balanced", pricing="spot", gpu_type=current_app.config["DEFAULT_GPU_TYPE"])
    if request.args.get("from"):
        values = job_form.values_from_job(visible_job(g.user, request.args["from"]),
                                          adjust=request.args.get("adjust") == "1",
                                          continue_step=request.args.get("checkpoint", type=int))
    elif request.args.get("template"):
        values = job_form.values_from_template(templates.get(request.args["template"]), values)
    if request.args.get("file") and not request.args.get("from"):
        values["training_file_id"] = visible_file(g.user, request.args["file"]).id
    return _form_page(values)


@bp.get("/jobs/estimate.json")
def job_estimate():
    """The live estimate while the form changes."""
    out = estimates(job_form.values_from_form(request.args))
    return jsonify(out), (400 if out["errors"] else 200)


@bp.post("/jobs/review")
def review_job():
    values = job_form.values_from_form(request.form)
    req, errors = job_form.parse(values)
    if req is None:
        return _form_page(values, errors, 400)
    est = estimates(values)
    if est["errors"]:
        return _form_page(values, est["errors"], 400)
    preset = PRESETS[req.preset].hyperparameters()
    changes = [(k, preset.get(k), v) for k, v in est["hyperparameters"].items()
               if preset.get(k) != v]
    training_file = visible_file(g.user, req.training_file_id)
    source, since_source = retry_changes(values, est["hyperparameters"])
    return render_template("console/jobs/review.html", values=values, req=req, est=est,
                           changes=changes, training_file=training_file, source=source,
                           since_source=since_source,
                           checkpoint_every=req.hyperparameters.checkpoint_every_steps or 100)


@bp.post("/jobs")
def create_job():
    values = job_form.values_from_form(request.form)
    start = request.form.get("action", "start") == "start"
    req, errors = job_form.parse(values, start=start)
    if req is None:
        return _form_page(values, errors, 400)
    source = visible_job(g.user, values["retry_of"]) if values.get("retry_of") else None
    try:
        job = create(g.user, req)
    except ConfigError as exc:
        return _form_page(values, job_form.problems_by_field(exc), 400)
    except QuotaExceeded as exc:         # the form stays as it was, with the limit and what to do
        page, status = _form_page(values, {"form": exc.message}, 429)
        return page, status, {"Retry-After": str(exc.retry_after_s)}
    except BudgetExceeded as exc:        # the numbers; an admin may override with a reason
        hint = (" To start it anyway, give a reason under “Override the budget”." if g.user.is_admin
                else " An admin can override the budget for this job.")
        return _form_page(values, {"form": exc.message + hint}, 402)
    if source is not None:
        record_retry(source, job)
    flash(f"Job {job.id} {'started' if start else 'saved; start it when you are ready'}.", "ok")
    return redirect(url_for("console.job_detail", job_id=job.id))
