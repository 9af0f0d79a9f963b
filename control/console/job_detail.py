"""One job: stages, progress, curves, metrics, cost, event log, evaluation, and its actions."""
from __future__ import annotations

import json

from flask import Response, flash, g, jsonify, redirect, render_template, request, url_for
from sqlalchemy import select

from control.console.audit import activity
from control.console.blueprint import bp
from control.console.evaluation import prompts_files
from control.console.event_text import describe
from control.console.filters import minutes, money, number
from control.console.job_edit import parse as parse_edit, values_from_form as edit_values, values_of
from control.console.job_list import live_row
from control.console.timeline import stage_timeline
from control.extensions import db
from control.models import JobStatus, ModelArtifact, TrainingEvent, TrainingJob, utcnow
from control.schemas import MAX_STEP, SAFE_INT
from control.services import downloads
from control.services import admission, checkpoints, evaluations, job_edits, lifecycle, templates, training_jobs
from control.services.access import visible_job
from control.services.exceptions import NotFound
from control.services.job_records import events, metric_points, support_bundle as bundle_of

EVENT_TYPES = ("stage", "metrics", "checkpoint", "evaluation", "artifact", "warning", "error", "completed",
               "heartbeat")
SHOWN_EVENTS = 500
CHART_POINTS = 1000


def timeline(job: TrainingJob) -> list[dict]:
    rows = db.session.execute(
        select(TrainingEvent.ts, TrainingEvent.type, TrainingEvent.payload)
        .where(TrainingEvent.training_job_id == job.id,
               TrainingEvent.type.in_(("stage", "completed", "error")))
        .order_by(TrainingEvent.id)).all()
    return stage_timeline([(ts, kind, (p or {}).get("stage")) for ts, kind, p in rows],
                          job.status, utcnow(), job.completed_at)


def event_filter(args) -> dict:
    kind = args.get("event_type", "")
    return {"types": [kind] if kind in EVENT_TYPES else None,
            "text": (args.get("event_q") or "").strip()[:200] or None}


def event_row(e: TrainingEvent) -> dict:
    return {"id": e.id, "attempt": e.attempt, "seq": e.seq, "type": e.type, "ts": e.ts,
            "text": describe(e.payload or {})}


COST_ALERT_TEXT = {"cost_80": "80% of estimate spent", "cost_95": "95% of estimate spent",
                   "over_estimate": "over estimate by 20%+"}


def progress(job: TrainingJob) -> dict:
    """The live figures of the job page, formatted."""
    est = (job.configuration or {}).get("estimate") or {}
    return {**live_row(job), "epoch": number(job.current_epoch, 3), "loss": number(job.latest_loss),
            "lr": f"{job.latest_learning_rate:.2e}" if job.latest_learning_rate is not None else "—",
            "elapsed": minutes(job.elapsed_minutes()), "estimate": money(job.cost_estimate),
            "estimate_range": f"{money(est.get('cost_low_usd'))}–{money(est.get('cost_high_usd'))}"
            if est else "—",
            "stage": job.current_stage, "timeline": timeline(job),
            "error": {"type": job.error_type, "message": job.error_message, "fix": job.error_fix,
                      "cause": job.error_cause, "user_error": job.error_user}
            if job.error_type else None,
            "projected": money(job.projected_cost_usd) if job.projected_cost_usd is not None else "—",
            "cost_alerts": [COST_ALERT_TEXT[c] for c in job.cost_alerts or [] if c in COST_ALERT_TEXT],
            "interrupted": job.checkpoint_recovery_count or 0,
            "stalled": job.status == JobStatus.STALLED,
            "stalled_since": job.stalled_at.strftime("%H:%M:%S UTC") if job.stalled_at else None}


def evaluation_of(job: TrainingJob) -> dict | None:
    """The job's newest completed evaluation (``evaluations.view``), or None before it has one."""
    try:
        return evaluations.view(job, viewer=g.user)
    except NotFound:
        return None


@bp.get("/jobs/<job_id>")
def job_detail(job_id):
    job = visible_job(g.user, job_id)
    points, total, every = metric_points(job.id, None, CHART_POINTS)
    flt = event_filter(request.args)
    rows = events(job.id, types=flt["types"], text=flt["text"], limit=SHOWN_EVENTS, newest=True)
    artifact = db.session.scalar(select(ModelArtifact).where(ModelArtifact.training_job_id == job.id))
    return render_template(
        "console/jobs/detail.html", job=job, live=progress(job), points=points,
        points_total=total, every=every, events=[event_row(e) for e in rows],
        last_event_id=last_event_id(job), event_types=EVENT_TYPES,
        event_type=request.args.get("event_type", ""), event_q=flt["text"] or "",
        artifact=artifact, evaluation=(artifact.evaluation if artifact else None),
        evaluation_view=evaluation_of(job), evaluation_runs=evaluations.runs_of(job),
        prompts_files=prompts_files(g.user) if job.status == JobStatus.COMPLETED else [],
        interruptions=job.to_dict()["interruptions"], job_template=templates.find(job.template_id),
        edit=g.get("job_edit") or {"form": values_of(job), "errors": {}},
        checkpoints=checkpoints.checkpoints(job) if job.is_final else [], activity=activity(job.id))


def last_event_id(job: TrainingJob) -> int:
    return db.session.scalar(select(db.func.max(TrainingEvent.id))
                             .where(TrainingEvent.training_job_id == job.id)) or 0


def _cursor(name: str, default: int | None, most: int) -> int | None:
    """A cursor from the page's script: a whole number, clamped to 0..``most`` (else ``default``)."""
    value = request.args.get(name, default, type=int)
    return default if value is None else min(max(value, 0), most)


@bp.post("/jobs/<job_id>/edit")
def edit_job(job_id):
    """The inline edit of the name, description, notes and tags; a refusal shows the page
    again, the values kept and each problem by its field."""
    job = visible_job(g.user, job_id)
    values = edit_values(request.form)
    req, errors = parse_edit(values)
    if req is None:
        g.job_edit = {"form": values, "errors": errors}
        return job_detail(job_id), 400
    changed = job_edits.edit(g.user, job, req)
    flash(f"Saved: {', '.join(changed)} changed." if changed else "Nothing to save: no field changed.", "ok")
    return redirect(url_for("console.job_detail", job_id=job.id, _anchor="about"))


@bp.get("/jobs/<job_id>/live.json")
def job_live(job_id):
    """What changed since the page last asked: figures, new metric points, new events."""
    job = visible_job(g.user, job_id)
    since_step = _cursor("since_step", None, MAX_STEP)
    after_id = _cursor("after_id", 0, SAFE_INT)
    points, _, _ = metric_points(job.id, since_step, CHART_POINTS)
    flt = event_filter(request.args)
    rows = events(job.id, after_id=after_id, types=flt["types"], text=flt["text"], limit=SHOWN_EVENTS)
    # A full batch: the next poll continues after it (more are waiting); else after them all.
    next_after = rows[-1].id if len(rows) == SHOWN_EVENTS else max(after_id, last_event_id(job))
    return jsonify(job=progress(job), points=points, events=[event_row(e) for e in rows], after_id=next_after)


def _json_download(body: dict, filename: str) -> Response:
    return Response(json.dumps(body, indent=1), mimetype="application/json",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@bp.get("/jobs/<job_id>/events.json")
def job_events_export(job_id):
    """The event log (as filtered on the page) with the job's configuration and error."""
    job = visible_job(g.user, job_id)
    flt = event_filter(request.args)
    return _json_download(bundle_of(job, flt["types"], flt["text"]), f"{job.id}-events.json")


CONSEQUENCES = {
    "cancel": "Training stops and no further cost accrues. The job cannot be resumed; "
              "checkpoints so far are kept.",
    "delete": "The job, its metrics, event log, checkpoints and adapter are deleted for good.",
}


def _confirmation(job: TrainingJob, action: str):
    """The page that asks before a cancel or a delete: GET shows it, its form POSTs the action."""
    return render_template("console/jobs/confirm.html", job=job, action=action,
                           title=f"{action.capitalize()} {job.name}?", consequence=CONSEQUENCES[action])


@bp.route("/jobs/<job_id>/cancel", methods=["GET", "POST"])
def cancel_job(job_id):
    """Cancel after confirming; a dispatched job's worker is stopped through the endpoint."""
    job = visible_job(g.user, job_id)
    if request.method == "GET":
        return _confirmation(job, "cancel")
    lifecycle.request_cancel(job, by=g.user)
    flash("Cancelled." if job.status == JobStatus.CANCELLED
          else "Cancel requested: the worker is being stopped.", "ok")
    return redirect(url_for("console.job_detail", job_id=job.id))


@bp.route("/jobs/<job_id>/delete", methods=["GET", "POST"])
def delete_job(job_id):
    job = visible_job(g.user, job_id)
    if request.method == "GET":
        return _confirmation(job, "delete")
    training_jobs.delete(job, by=g.user)
    flash(f"Job {job_id} deleted.", "ok")
    return redirect(url_for("console.job_list"))


@bp.post("/jobs/<job_id>/start")
def start_job(job_id):
    admission.start(visible_job(g.user, job_id), by=g.user)
    flash("Started: the job is queued for a GPU worker.", "ok")
    return redirect(url_for("console.job_detail", job_id=job_id))


@bp.post("/jobs/<job_id>/checkpoint")
def checkpoint_job(job_id):
    checkpoints.request_checkpoint(visible_job(g.user, job_id))
    flash("Checkpoint requested: the worker saves one at its next step; the event log shows it.", "ok")
    return redirect(url_for("console.job_detail", job_id=job_id))


@bp.get("/jobs/<job_id>/support-bundle.json")
def support_bundle(job_id):
    job = visible_job(g.user, job_id)
    return _json_download(bundle_of(job), f"{job.id}-support-bundle.json")


@bp.get("/jobs/<job_id>/download/adapter")
def download_adapter(job_id):
    link = downloads.adapter_link(visible_job(g.user, job_id), by=g.user)
    return redirect(link.url, 302)


@bp.get("/jobs/<job_id>/download/metrics.<fmt>")
def download_metrics(job_id, fmt):
    job = visible_job(g.user, job_id)
    if fmt not in downloads.METRICS_FORMATS:
        return redirect(url_for("console.job_detail", job_id=job.id))
    body, mimetype, name = downloads.metrics_export(job, fmt, by=g.user)
    return Response(body, mimetype=mimetype, headers={"Content-Disposition": f'attachment; filename="{name}"'})
