"""The quality gate on a job, and the decisions to deliver it or not.

Each gated measure stands against its target (``shared.evaluation.gate``). A reviewer or an
admin approves or rejects the model for delivery with a reason; an approval with a target
not met must say so. Every decision is kept, with who made it, when, and the measures as
they stood; the job's ``delivery_status`` is the newest one (the jobs list filters on it).
"""
from __future__ import annotations

from sqlalchemy import select

from control.extensions import db
from control.models import DeliveryDecision, JobStatus, TrainingJob, User
from control.services import audit, evaluations, notices, queue
from control.services.exceptions import Conflict, NotFound
from control.services.reviews import require_reviewer
from shared.errors import ConfigError, Problem
from shared.evaluation import gate
from shared.evaluation.report import Measure


def history(job: TrainingJob) -> list[DeliveryDecision]:
    """Every decision on the job, newest first."""
    return list(db.session.scalars(select(DeliveryDecision).where(DeliveryDecision.training_job_id == job.id)
                                   .order_by(DeliveryDecision.decided_at.desc(), DeliveryDecision.id.desc())))


def gate_of(job: TrainingJob, view: dict | None = None, *, viewer: User | None = None) -> dict:
    """The gated measures with their statuses, where the job stands, and its decisions."""
    if view is None:
        try:
            view = evaluations.view(job, viewer=viewer)
        except NotFound:
            view = {"measures": [], "run": None}
    measures = [Measure.model_validate(m) for m in view.get("measures", [])]
    items = gate.items(measures)
    decisions = history(job)
    run_id = (view.get("run") or {}).get("id")
    current = decisions[0] if decisions and decisions[0].run_id == run_id else None
    return {"job_id": job.id, "run": run_id,
            "items": items, "standing": gate.standing(items) if items else "not_met",
            "delivery_status": job.delivery_status,
            "decision": current.to_dict() if current else None,
            "decided_on_earlier_evaluation": bool(decisions) and current is None,
            "history": [d.to_dict() for d in decisions]}


def decide(user: User, job: TrainingJob, decision: str, reason: str) -> DeliveryDecision:
    """Approve or reject the job for delivery. Commits, and queues a new report version."""
    require_reviewer(user)
    if job.status != JobStatus.COMPLETED:
        raise Conflict(f"job {job.id} is {job.status}: only a completed job can be approved or rejected",
                       code="not_ready")
    try:
        view = evaluations.view(job)
    except NotFound:
        raise Conflict(f"job {job.id} has no completed evaluation to decide on", code="not_ready") from None
    standing = gate_of(job, view)
    try:
        gate.check_decision(decision, reason, standing["items"])
    except gate.DecisionRefused as exc:
        raise ConfigError([Problem("reason" if decision in ("approved", "rejected") else "decision",
                                   str(exc), "reason" if decision in ("approved", "rejected") else "decision")])
    row = DeliveryDecision(training_job_id=job.id, decision=decision, reason=reason.strip(),
                           run_id=standing["run"], gate=standing["items"], measures=view["measures"],
                           decided_by=user.id)
    db.session.add(row)
    job.delivery_status = decision
    notices.job_event(f"delivery.{decision}", job, decided_by=user.email, reason=row.reason)
    audit.record(f"delivery.{decision}", actor=user, target_type="job", target_id=job.id, job_id=job.id,
                 details={"reason": row.reason[:500], "standing": standing["standing"], "run": standing["run"]})
    db.session.commit()
    queue.enqueue_report(job.id, "decision")
    return row
