"""A job's records: ``/metrics`` (the curves), ``/events`` (the log), ``/artifacts``."""
from __future__ import annotations

from flask import g, jsonify
from sqlalchemy import select

from control.api.blueprint import bp
from control.api.documentation import api_doc
from control.api.requests import query_args
from control.responses import ArtifactsOut, EventPage, MetricsOut
from control.schemas import EventsQuery, MetricsQuery
from control.extensions import db
from control.models import JobStatus, ModelArtifact
from control.services.job_records import events, metric_points
from control.services.access import visible_job


@bp.get("/training/jobs/<job_id>/metrics")
@api_doc("Metric history, thinned evenly to max_points; since_step for increments",
         query=MetricsQuery, responses={200: MetricsOut})
def job_metrics(job_id):
    job = visible_job(g.user, job_id)
    q = query_args(MetricsQuery)
    points, total, every = metric_points(job.id, q.since_step, q.max_points)
    return jsonify(job_id=job.id, status=job.status, current_step=job.current_step,
                   total_steps=job.total_steps, points_total=total, every_nth=every, data=points)


@bp.get("/training/jobs/<job_id>/events")
@api_doc("The event log, by cursor (after_id), of some types or one attempt",
         query=EventsQuery, responses={200: EventPage})
def job_events(job_id):
    job = visible_job(g.user, job_id)
    q = query_args(EventsQuery)
    rows = events(job.id, after_id=q.after_id, types=q.type.split(",") if q.type else None,
                  attempt=q.attempt, limit=q.limit)
    return jsonify(job_id=job.id, data=[r.to_dict() for r in rows],
                   next_after_id=rows[-1].id if rows else q.after_id)


@bp.get("/training/jobs/<job_id>/artifacts")
@api_doc("Artifacts, held-out scores and download links", responses={200: ArtifactsOut})
def job_artifacts(job_id):
    job = visible_job(g.user, job_id)
    row = db.session.scalar(select(ModelArtifact).where(ModelArtifact.training_job_id == job.id))
    downloads = {kind: f"/api/training/jobs/{job.id}/download/{kind}"
                 for kind in ("adapters", "metrics", "validation-report")}
    return jsonify(job_id=job.id, status=job.status,
                   artifacts=row.to_dict() if row else None,
                   downloads=downloads if job.status == JobStatus.COMPLETED else {})
