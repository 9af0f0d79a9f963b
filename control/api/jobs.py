"""``/api/training/jobs``: create, list, show, start, cancel, delete."""
from __future__ import annotations

from flask import g, jsonify

from control.api import bp
from control.api.schemas import CreateJob, JobListQuery, json_body, query_args
from control.services import jobs


def _detail(job) -> dict:
    out = job.to_dict()
    out["estimate"] = job.configuration.get("estimate")
    out["attempt_history"] = [a.to_dict() for a in job.attempts]
    return out


@bp.post("/training/jobs")
def create_job():
    job = jobs.create(g.user, json_body(CreateJob))
    return jsonify(_detail(job)), 201


@bp.get("/training/jobs")
def list_jobs():
    query = query_args(JobListQuery)
    rows, total = jobs.list_jobs(g.user, query)
    return jsonify(data=[j.to_dict() for j in rows], page=query.page, per_page=query.per_page,
                   total=total)


@bp.get("/training/jobs/<job_id>")
def get_job(job_id):
    return jsonify(_detail(jobs.visible_job(g.user, job_id)))


@bp.post("/training/jobs/<job_id>/start")
def start_job(job_id):
    return jsonify(_detail(jobs.start(jobs.visible_job(g.user, job_id)))), 202


@bp.post("/training/jobs/<job_id>/cancel")
def cancel_job(job_id):
    return jsonify(_detail(jobs.cancel(jobs.visible_job(g.user, job_id)))), 202


@bp.delete("/training/jobs/<job_id>")
def delete_job(job_id):
    jobs.delete(jobs.visible_job(g.user, job_id))
    return "", 204
