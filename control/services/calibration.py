"""How good the estimates are: each finished job's actual cost against its estimate, and
the share within ±15% (the documents' target: 90% of jobs)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from control.extensions import db
from control.models import JobStatus, TrainingJob
from shared import cost

TARGET_SHARE = 0.90


def calibration(since: datetime | None = None) -> dict:
    """Completed jobs with a priced estimate (since ``since``): how many, the share within
    ±15%, the median actual/estimate ratio, and the worst five."""
    stmt = select(TrainingJob).where(TrainingJob.status == JobStatus.COMPLETED, TrainingJob.cost_estimate > 0)
    if since is not None:
        stmt = stmt.where(TrainingJob.completed_at >= since)
    rows = db.session.scalars(stmt.order_by(TrainingJob.completed_at.desc()).limit(5000)).all()
    ratios = sorted((((j.actual_cost or 0.0) / j.cost_estimate, j) for j in rows), key=lambda rj: rj[0])
    within = sum(1 for r, j in ratios if cost.within_accuracy(j.actual_cost or 0.0, j.cost_estimate))
    worst = sorted(ratios, key=lambda rj: abs(rj[0] - 1), reverse=True)[:5]
    return {"jobs": len(ratios), "within_15_pct": within,
            "share_within_15_pct": round(within / len(ratios), 4) if ratios else None,
            "target_share": TARGET_SHARE,
            "median_ratio": round(ratios[len(ratios) // 2][0], 4) if ratios else None,
            "worst": [{"job_id": j.id, "name": j.name, "estimate_usd": j.cost_estimate,
                       "actual_usd": round(j.actual_cost or 0.0, 4), "ratio": round(r, 4)} for r, j in worst]}
