"""A job's records as the API and the console read them: metric points, the event log, and
the support bundle that holds them all."""
from __future__ import annotations

import math

from sqlalchemy import select

from control.extensions import db
from control.models import METRIC_FIELDS, MetricPoint, TrainingEvent, TrainingJob, iso, utcnow


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


def events(job_id: str, *, after_id: int = 0, types: list[str] | None = None,
           attempt: int | None = None, text: str | None = None, limit: int | None = 200,
           newest: bool = False) -> list[TrainingEvent]:
    """The job's events after ``after_id``, oldest first: of ``types``, of one attempt, or
    containing ``text`` anywhere in the event (case-insensitive). ``newest`` keeps the last
    ``limit`` instead of the first."""
    stmt = select(TrainingEvent).where(TrainingEvent.training_job_id == job_id,
                                       TrainingEvent.id > after_id)
    if types:
        stmt = stmt.where(TrainingEvent.type.in_(types))
    if attempt:
        stmt = stmt.where(TrainingEvent.attempt == attempt)
    if text:
        escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        stmt = stmt.where(db.cast(TrainingEvent.payload, db.String).ilike(f"%{escaped}%", escape="\\"))
    if newest:
        rows = db.session.scalars(stmt.order_by(TrainingEvent.id.desc()).limit(limit)).all()
        return list(reversed(rows))
    return list(db.session.scalars(stmt.order_by(TrainingEvent.id).limit(limit)))


def support_bundle(job: TrainingJob, types: list[str] | None = None, text: str | None = None) -> dict:
    """Everything a support ticket needs, in one document: the job and its configuration,
    the classified error, every attempt and interruption, and the event log (all of it, or
    the events of ``types`` / containing ``text``, as the console's event filter shows)."""
    return {"bundle": "brightrun-support/1", "generated_at": iso(utcnow()), "job": job.to_dict(),
            "error": {"type": job.error_type, "user_error": job.error_user, "message": job.error_message,
                      "cause": job.error_cause, "fix": job.error_fix, "adjustment": job.error_adjustment}
            if job.error_type else None,
            "attempts": [a.to_dict() for a in job.attempts],
            "filter": {"type": types[0] if types else None, "text": text},
            "events": [e.to_dict() for e in events(job.id, types=types, text=text, limit=None)]}
