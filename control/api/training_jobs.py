"""``/api/training/jobs``: create, list, show, start, cancel, delete."""
from __future__ import annotations

from flask import g, jsonify

from control.api.blueprint import bp
from control.api.requests import json_body, query_args
from control.schemas import CreateJob, JobListQuery, RetryJob
from control.services import checkpoints, lifecycle, retries, training_jobs
from control.services.access import visible_job
from control.services.job_records import support_bundle as bundle_of


def _detail(job) -> dict:
    out = job.to_dict()
    out["estimate"] = job.configuration.get("estimate")
    out["attempt_history"] = [a.to_dict() for a in job.attempts]
    return out


@bp.post("/training/jobs")
def create_job():
    job = training_jobs.create(g.user, json_body(CreateJob))
    return jsonify(_detail(job)), 201


@bp.get("/training/jobs")
def list_jobs():
    query = query_args(JobListQuery)
    rows, total = training_jobs.list_jobs(g.user, query)
    return jsonify(data=[j.to_dict() for j in rows], page=query.page, per_page=query.per_page,
                   total=total)


@bp.get("/training/jobs/<job_id>")
def get_job(job_id):
    return jsonify(_detail(visible_job(g.user, job_id)))


@bp.post("/training/jobs/<job_id>/start")
def start_job(job_id):
    return jsonify(_detail(lifecycle.start(visible_job(g.user, job_id)))), 202


@bp.post("/training/jobs/<job_id>/cancel")
def cancel_job(job_id):
    return jsonify(_detail(lifecycle.request_cancel(visible_job(g.user, job_id), by=g.user.email))), 202


@bp.delete("/training/jobs/<job_id>")
def delete_job(job_id):
    training_jobs.delete(visible_job(g.user, job_id))
    return "", 204


@bp.post("/training/jobs/<job_id>/checkpoint")
def checkpoint_job(job_id):
    """Checkpoint at the next step (before a planned shutdown); the event log shows it."""
    return jsonify(_detail(checkpoints.request_checkpoint(visible_job(g.user, job_id)))), 202


@bp.get("/training/jobs/<job_id>/checkpoints")
def job_checkpoints(job_id):
    job = visible_job(g.user, job_id)
    return jsonify(job_id=job.id, data=checkpoints.checkpoints(job))


@bp.post("/training/jobs/<job_id>/retry")
def retry_job(job_id):
    """A new job from a finished one, with the failure's adjustment; the changes are listed."""
    new, changes = retries.retry(g.user, visible_job(g.user, job_id), json_body(RetryJob))
    return jsonify({**_detail(new), "changes": changes}), 201


@bp.get("/training/jobs/<job_id>/support-bundle")
def support_bundle(job_id):
    """The job, its configuration, error, attempts and event log as one JSON file."""
    job = visible_job(g.user, job_id)
    return jsonify(bundle_of(job)), 200, {
        "Content-Disposition": f'attachment; filename="{job.id}-support-bundle.json"'}
