"""The jobs list (filters, sort, live rows) and the new-job flow (form, estimate, review, start)."""
from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

from flask import current_app, flash, g, jsonify, redirect, render_template, request, url_for
from pydantic import ValidationError
from sqlalchemy import select

from control.schemas import JobListQuery
from control.console import bp, job_form
from control.console.filters import minutes, money, status_label, tone
from control.extensions import db
from control.models import STATUSES, TrainingJob, User
from control.services import jobs as job_service
from shared import cost
from shared.errors import ConfigError
from shared.presets import PRESETS

PER_PAGE = 25
COST_WARNING_USD = 100.0
PRESET_RISK = {
    "conservative": "Low risk: small updates, least forgetting; may under-learn a large dataset.",
    "balanced": "Moderate risk: the usual choice once a dataset has been checked.",
    "aggressive": "Higher risk: learns fastest but can overfit and forget; read the held-out numbers.",
}


def _day(value: str, field: str, errors: dict) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        errors[field] = f"{value!r} is not a date (YYYY-MM-DD)"
        return None


def list_query(args, user: User) -> tuple[JobListQuery, dict, dict]:
    """The list's filters from the page's query string: (query, echoed values, errors)."""
    errors: dict = {}
    shown = {k: args.get(k, "") for k in ("q", "from", "to", "creator", "sort")}
    shown["status"] = [s for s in args.getlist("status") if s in STATUSES]
    after, before = _day(shown["from"], "from", errors), _day(shown["to"], "to", errors)
    fields = {
        "page": max(1, args.get("page", 1, type=int) or 1), "per_page": PER_PAGE,
        "status": ",".join(shown["status"]) or None, "q": shown["q"] or None,
        "created_after": datetime.combine(after, time(), timezone.utc) if after else None,
        # the "to" day is included: everything before the next midnight
        "created_before": datetime.combine(before + timedelta(days=1), time(), timezone.utc) if before else None,
        "created_by": (shown["creator"] or None) if user.is_admin else None,
        "sort": shown["sort"] if shown["sort"] in job_service.SORTS else "newest",
    }
    try:
        query = JobListQuery.model_validate(fields, strict=False)
    except ValidationError as exc:
        errors["q"] = exc.errors()[0]["msg"]
        query = JobListQuery(per_page=PER_PAGE)
    return query, shown, errors


@bp.get("/jobs")
def job_list():
    query, shown, errors = list_query(request.args, g.user)
    rows, total = job_service.list_jobs(g.user, query)
    users = (db.session.execute(select(User.id, User.email).order_by(User.email)).all()
             if g.user.is_admin else [])
    pages = max(1, -(-total // PER_PAGE))
    return render_template("console/jobs/list.html", jobs=rows, total=total, page=query.page,
                           pages=pages, shown=shown, errors=errors, statuses=STATUSES, users=users,
                           sorts=list(job_service.SORTS),
                           emails=dict(users) if g.user.is_admin else {g.user.id: g.user.email})


def live_row(job: TrainingJob) -> dict:
    """What a list row or a job page shows that changes while a job runs."""
    return {"id": job.id, "status": job.status, "status_label": status_label(job.status),
            "tone": tone(job.status), "progress": round(job.progress_percentage or 0.0, 1),
            "step": job.current_step, "total_steps": job.total_steps,
            "cost": money(job.actual_cost),
            "eta": "—" if job.is_final else minutes(job.estimated_time_remaining_minutes),
            "final": job.is_final}


@bp.get("/jobs/live.json")
def jobs_live():
    """The listed jobs' changing fields, for the list's rows to update without a reload."""
    ids = [i for i in request.args.get("ids", "").split(",") if i][:200]
    stmt = select(TrainingJob).where(TrainingJob.id.in_(ids))
    if not g.user.is_admin:
        stmt = stmt.where(TrainingJob.created_by == g.user.id)
    rows = db.session.scalars(stmt).all() if ids else []
    return jsonify(jobs=[live_row(j) for j in rows])


# ------------------------------------------------------------------------ new job

def estimates(values: dict) -> dict:
    """The estimate for the form's choices, and each preset's with the same other choices."""
    req, errors = job_form.parse(values, start=False)
    if req is None:
        return {"errors": errors}
    training_file = job_service.visible_file(g.user, req.training_file_id)
    overrides = req.hyperparameters.model_dump(exclude_none=True)
    out: dict = {"errors": {}, "presets": {}}
    try:
        for name in PRESETS:
            hp, _, base_model, method, gpu_type = job_service.resolve_settings(
                name, overrides, req.base_model, req.method, req.gpu.type)
            est = job_service.estimate_for(training_file, hp, base_model, method, gpu_type, req.gpu.pricing)
            out["presets"][name] = {"cost": money(est.cost_usd), "duration": minutes(est.duration_minutes),
                                    "cost_usd": est.cost_usd}
            if name == req.preset:
                out.update(estimate=est.to_dict(), cost=money(est.cost_usd),
                           low=money(est.cost_low_usd), high=money(est.cost_high_usd),
                           duration=minutes(est.duration_minutes), base_model=base_model,
                           method=method, gpu_type=gpu_type, hyperparameters=hp.model_dump(mode="json"),
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
    old = job_service.visible_job(g.user, values["retry_of"])
    before = old.configuration["hyperparameters"]
    changes = [(k, before.get(k), v) for k, v in hyperparameters.items() if before.get(k) != v]
    for field, was, now in (("gpu_type", old.gpu_type, values.get("gpu_type")),
                            ("pricing", old.gpu_pricing_tier, values.get("pricing"))):
        if now and now != was:
            changes.append((field, was, now))
    return old, changes


def _form_page(values: dict, errors: dict | None = None, status: int = 200):
    files = job_service.visible_files(g.user)
    source = job_service.visible_job(g.user, values["retry_of"]) if values.get("retry_of") else None
    est = estimates(values) if values.get("training_file_id") else {"errors": {}}
    return render_template("console/jobs/new.html", values=values, errors=errors or {},
                           files=files, presets=PRESETS, risk=PRESET_RISK, est=est, source=source,
                           gpus=cost.GPU_CATALOG, overrides=job_form.OVERRIDES,
                           defaults={"base_model": current_app.config["DEFAULT_BASE_MODEL"],
                                     "method": current_app.config["DEFAULT_METHOD"],
                                     "gpu_type": current_app.config["DEFAULT_GPU_TYPE"]}), status


@bp.route("/jobs/new", methods=["GET", "POST"])
def new_job():
    """The form: empty, for a file (``?file=``), a retry of a job (``?from=``), or re-shown (POST)."""
    if request.method == "POST":
        return _form_page(job_form.values_from_form(request.form))
    values = job_form.values_from_form({})
    values.update(preset="balanced", pricing="spot", gpu_type=current_app.config["DEFAULT_GPU_TYPE"])
    if request.args.get("from"):
        values = job_form.values_from_job(job_service.visible_job(g.user, request.args["from"]),
                                          adjust=request.args.get("adjust") == "1",
                                          continue_step=request.args.get("checkpoint", type=int))
    elif request.args.get("file"):
        values["training_file_id"] = job_service.visible_file(g.user, request.args["file"]).id
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
    training_file = job_service.visible_file(g.user, req.training_file_id)
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
    source = job_service.visible_job(g.user, values["retry_of"]) if values.get("retry_of") else None
    try:
        job = job_service.create(g.user, req)
    except ConfigError as exc:
        return _form_page(values, job_form.problems_by_field(exc), 400)
    if source is not None:
        job_service.record_retry(source, job)
    flash(f"Job {job.id} {'started' if start else 'saved; start it when you are ready'}.", "ok")
    return redirect(url_for("console.job_detail", job_id=job.id))
