"""One dataset's trends: perplexity gain and cost per completed job over time, so an engineer
who trains many times on a dataset sees whether the runs are getting better and what each
costs. A user sees their own jobs' points, an admin everyone's (as in the jobs list)."""
from __future__ import annotations

import statistics

from sqlalchemy import select

from control.extensions import db
from control.models import JobStatus, TrainingJob, User
from control.models.types import iso
from control.services.access import visible_file


def summarize(points: list[dict]) -> dict:
    """The best gain, the medians and the total cost of ``points``.

    >>> summarize([{"id": "a", "name": "a", "perplexity_gain_pct": 10.0, "cost_usd": 2.0},
    ...            {"id": "b", "name": "b", "perplexity_gain_pct": 30.5, "cost_usd": 4.0},
    ...            {"id": "c", "name": "c", "perplexity_gain_pct": None, "cost_usd": 9.0}])
    {'best': {'id': 'b', 'name': 'b', 'perplexity_gain_pct': 30.5}, 'median_gain_pct': 20.25, 'median_cost_usd': 4.0, 'total_cost_usd': 15.0}
    >>> summarize([])
    {'best': None, 'median_gain_pct': None, 'median_cost_usd': None, 'total_cost_usd': 0.0}
    """
    gains = [p for p in points if p["perplexity_gain_pct"] is not None]
    best = max(gains, key=lambda p: p["perplexity_gain_pct"], default=None)
    costs = [p["cost_usd"] for p in points]
    return {"best": {k: best[k] for k in ("id", "name", "perplexity_gain_pct")} if best else None,
            "median_gain_pct": round(statistics.median(p["perplexity_gain_pct"] for p in gains), 2) if gains else None,
            "median_cost_usd": round(statistics.median(costs), 2) if costs else None,
            "total_cost_usd": round(sum(costs, 0.0), 2)}


def dataset_trends(user: User, training_file_id: str, limit: int) -> dict:
    """The newest ``limit`` completed jobs of the training file, oldest first (404 when the
    user may not see the file)."""
    tf = visible_file(user, training_file_id)
    where = [TrainingJob.training_file_id == tf.id, TrainingJob.status == JobStatus.COMPLETED]
    if not user.is_admin:
        where.append(TrainingJob.created_by == user.id)
    count = db.session.scalar(select(db.func.count()).select_from(TrainingJob).where(*where))
    rows = db.session.execute(
        select(TrainingJob.id, TrainingJob.name, TrainingJob.preset, TrainingJob.completed_at,
               TrainingJob.created_at, TrainingJob.perplexity_gain_pct, TrainingJob.actual_cost,
               TrainingJob.actual_duration_minutes)
        .where(*where).order_by(db.func.coalesce(TrainingJob.completed_at, TrainingJob.created_at).desc(),
                                TrainingJob.id.desc()).limit(limit)).all()
    points = [{"id": r.id, "name": r.name, "preset": r.preset, "completed_at": iso(r.completed_at or r.created_at),
               "perplexity_gain_pct": r.perplexity_gain_pct, "cost_usd": round(r.actual_cost or 0.0, 2),
               "duration_minutes": r.actual_duration_minutes} for r in reversed(rows)]
    return {"training_file_id": tf.id, "filename": tf.filename, "completed_jobs": count, "shown": len(points),
            "points": points, "summary": summarize(points)}
