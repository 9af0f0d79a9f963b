"""``/api/training/jobs``: create, list, show, start, cancel, delete."""
from __future__ import annotations

from flask import g, jsonify

from control.api.blueprint import bp
from control.api.documentation import Reply, api_doc
from control.api.job_edits import edit_request
from control.api.job_export import LIST_REPLY, csv_reply
from control.api.requests import json_body, query_args
from control.responses import (CheckpointList, ErrorOut, JobDetail, RetryResult,
                               SupportBundle)
from control.schemas import CreateJob, JobListQuery, RetryJob, StartJob
from control.schemas.templates import EditJob
from control.services import admission, checkpoints, job_edits, lifecycle, retries, training_jobs
from control.services.access import visible_job
from control.services.job_records import support_bundle as bundle_of


def _detail(job) -> dict:
    out = job.to_dict()
    out["estimate"] = job.configuration.get("estimate")
    out["attempt_history"] = [a.to_dict() for a in job.attempts]
    return out


@bp.post("/training/jobs")
@api_doc("Create a training job (pending, or started with \"start\": true), with its cost "
         "estimate", body=CreateJob, responses={201: JobDetail, 402: ErrorOut, 403: ErrorOut, 404: ErrorOut,
                                                        409: ErrorOut, 422: ErrorOut})
def create_job():
    job = training_jobs.create(g.user, json_body(CreateJob))
    return jsonify(_detail(job)), 201


@bp.get("/training/jobs")
@api_doc("Your jobs, paginated; filter by status, creator, date, preset, tag, text, delivery, dataset, cost "
         "and duration ranges; sort; format=csv: every matching job as CSV; for_review (reviewers): every "
         "user's completed jobs waiting for a decision",
         query=JobListQuery, responses={200: LIST_REPLY, 403: ErrorOut})
def list_jobs():
    query = query_args(JobListQuery)
    if query.format == "csv":
        return csv_reply(g.user, query)
    rows, total = training_jobs.list_jobs(g.user, query)
    return jsonify(data=[j.to_dict() for j in rows], page=query.page, per_page=query.per_page,
                   total=total), 200, {"X-Total-Count": str(total)}


@bp.get("/training/jobs/<job_id>")
@api_doc("A job: status, stage, progress, step of total, loss, ETA, cost, attempts",
         responses={200: JobDetail})
def get_job(job_id):
    return jsonify(_detail(visible_job(g.user, job_id)))


@bp.patch("/training/jobs/<job_id>")
@api_doc("Change a job's name, description, notes or tags (the fields given; null clears a description "
         "or notes); any other field is refused with not_editable, naming it",
         body=EditJob, responses={200: JobDetail, 400: ErrorOut})
def edit_job(job_id):
    job = visible_job(g.user, job_id)
    job_edits.edit(g.user, job, edit_request())
    return jsonify(_detail(job))


@bp.post("/training/jobs/<job_id>/start")
@api_doc("Queue a pending job for dispatch (or, estimated above APPROVAL_THRESHOLD_USD, wait for an "
         "admin); refused with budget_exceeded when its estimate passes the month's budget, unless an "
         "admin gives budget_override", body=StartJob,
         responses={202: JobDetail, 402: ErrorOut, 403: ErrorOut, 409: ErrorOut})
def start_job(job_id):
    body = json_body(StartJob, empty_ok=True)
    override = body.budget_override.model_dump() if body.budget_override else None
    return jsonify(_detail(admission.start(visible_job(g.user, job_id), by=g.user, budget_override=override))), 202


@bp.post("/training/jobs/<job_id>/cancel")
@api_doc("Cancel a job; no further cost accrues", responses={202: JobDetail, 409: ErrorOut})
def cancel_job(job_id):
    return jsonify(_detail(lifecycle.request_cancel(visible_job(g.user, job_id), by=g.user))), 202


@bp.delete("/training/jobs/<job_id>")
@api_doc("Delete a job that is not running, with its stored files",
         responses={204: None, 409: ErrorOut})
def delete_job(job_id):
    training_jobs.delete(visible_job(g.user, job_id), by=g.user)
    return "", 204


@bp.post("/training/jobs/<job_id>/checkpoint")
@api_doc("Checkpoint a training job at its next step (before a planned shutdown)",
         responses={202: JobDetail, 409: ErrorOut})
def checkpoint_job(job_id):
    """Checkpoint at the next step (before a planned shutdown); the event log shows it."""
    return jsonify(_detail(checkpoints.request_checkpoint(visible_job(g.user, job_id)))), 202


@bp.get("/training/jobs/<job_id>/checkpoints")
@api_doc("The job's complete checkpoints, newest first", responses={200: CheckpointList})
def job_checkpoints(job_id):
    job = visible_job(g.user, job_id)
    return jsonify(job_id=job.id, data=checkpoints.checkpoints(job))


@bp.post("/training/jobs/<job_id>/retry")
@api_doc("A new job from a finished one, with the failure's suggested adjustment and the "
         "changes listed; from_checkpoint_step continues its training", body=RetryJob,
         responses={201: RetryResult, 409: ErrorOut, 422: ErrorOut})
def retry_job(job_id):
    """A new job from a finished one, with the failure's adjustment; the changes are listed."""
    new, changes = retries.retry(g.user, visible_job(g.user, job_id), json_body(RetryJob))
    return jsonify({**_detail(new), "changes": changes}), 201


@bp.get("/training/jobs/<job_id>/support-bundle")
@api_doc("Job, configuration, classified error, attempts and event log in one file",
         responses={200: Reply(SupportBundle, headers={"Content-Disposition": "attachment; a file name"})})
def support_bundle(job_id):
    """The job, its configuration, error, attempts and event log as one JSON file."""
    job = visible_job(g.user, job_id)
    return jsonify(bundle_of(job)), 200, {
        "Content-Disposition": f'attachment; filename="{job.id}-support-bundle.json"'}
