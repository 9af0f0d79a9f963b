"""A job's records: ``/metrics`` (the curves), ``/events`` (the log), ``/artifacts``."""
from __future__ import annotations

import math

from flask import g, jsonify
from sqlalchemy import select

from control.api import bp
from control.api.schemas import EventsQuery, MetricsQuery, query_args
from control.extensions import db
from control.models import METRIC_FIELDS, MetricPoint, ModelArtifact, TrainingEvent
from control.services.jobs import visible_job


def metric_points(job_id: str, since_step: int | None, max_points: int) -> tuple[list, int, int]:
    """The job's points after ``since_step``, thinned evenly to at most ``max_points`` (+ the last)."""
    cond = [MetricPoint.training_job_id == job_id]
    if since_step is not None:
        cond.append(MetricPoint.step > since_step)
    total = db.session.scalar(select(db.func.count()).where(*cond))
    every = max(1, math.ceil(total / max_points))
    if every > 1:
        last = db.session.scalar(select(db.func.max(MetricPoint.step)).where(MetricPoint.training_job_id == job_id))
        cond.append((MetricPoint.step % every == 0) | (MetricPoint.step == last))
    # Plain rows, not ORM objects: building 1,000 objects was most of the route's time.
    columns = [getattr(MetricPoint, f) for f in METRIC_FIELDS]
    rows = db.session.execute(select(*columns).where(*cond).order_by(MetricPoint.step)).mappings()
    return [dict(r) for r in rows], total, every


@bp.get("/training/jobs/<job_id>/metrics")
def job_metrics(job_id):
    job = visible_job(g.user, job_id)
    q = query_args(MetricsQuery)
    points, total, every = metric_points(job.id, q.since_step, q.max_points)
    return jsonify(job_id=job.id, status=job.status, current_step=job.current_step,
                   total_steps=job.total_steps, points_total=total, every_nth=every, data=points)


@bp.get("/training/jobs/<job_id>/events")
def job_events(job_id):
    job = visible_job(g.user, job_id)
    q = query_args(EventsQuery)
    stmt = (select(TrainingEvent).where(TrainingEvent.training_job_id == job.id,
                                        TrainingEvent.id > q.after_id))
    if q.type:
        stmt = stmt.where(TrainingEvent.type.in_(q.type.split(",")))
    if q.attempt:
        stmt = stmt.where(TrainingEvent.attempt == q.attempt)
    rows = db.session.scalars(stmt.order_by(TrainingEvent.id).limit(q.limit)).all()
    return jsonify(job_id=job.id, data=[r.to_dict() for r in rows],
                   next_after_id=rows[-1].id if rows else q.after_id)


@bp.get("/training/jobs/<job_id>/artifacts")
def job_artifacts(job_id):
    job = visible_job(g.user, job_id)
    row = db.session.scalar(select(ModelArtifact).where(ModelArtifact.training_job_id == job.id))
    downloads = {kind: f"/api/training/jobs/{job.id}/download/{kind}"
                 for kind in ("adapters", "metrics", "validation-report")}
    return jsonify(job_id=job.id, status=job.status,
                   artifacts=row.to_dict() if row else None,
                   downloads=downloads if job.status == "completed" else {})
