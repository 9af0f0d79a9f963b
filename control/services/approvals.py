"""Jobs estimated above ``APPROVAL_THRESHOLD_USD`` wait as ``awaiting_approval`` until an
admin approves (they are queued for a GPU) or declines them (cancelled, with the reason).

The admins hear of a waiting job (``job.awaiting_approval``) and the owner of the decision
(``job.approval_decided``). A decision is a conditional ``UPDATE`` from
``awaiting_approval``: of two admins clicking at once, one wins and the other is told the
job is no longer waiting. ``job.approval`` keeps the story: ``{"state": "awaiting" |
"approved" | "declined", "at", "by", "reason"}``.
"""
from __future__ import annotations

from flask import current_app
from sqlalchemy import select, update

from control.extensions import db
from control.models import JobStatus, TrainingJob, User, iso, utcnow
from control.services import audit, notices, queue
from control.services.exceptions import Forbidden, JobStateError
from shared.errors import ErrorType

DECLINED_FIX = ("Read the admin's reason; to run it, lower its cost (fewer epochs or max_steps, a spot GPU) "
                "and start a new job (Retry), or ask an admin to approve it.")


def threshold_usd() -> float:
    return float(current_app.config["APPROVAL_THRESHOLD_USD"])


def needs_approval(job: TrainingJob) -> bool:
    """Estimated above the threshold and not approved yet."""
    approved = (job.approval or {}).get("state") == "approved"
    return not approved and (job.cost_estimate or 0.0) > threshold_usd()


def _admin_emails() -> list[str]:
    return list(db.session.scalars(select(User.email).where(User.role == "admin", User.deactivated_at.is_(None))
                                   .order_by(User.email)))


def hold_for_approval(job: TrainingJob) -> bool:
    """Whether ``job`` must wait for an admin; if so it is now ``awaiting_approval`` and the
    admins are told. The caller commits."""
    if not needs_approval(job):
        return False
    job.status = JobStatus.AWAITING_APPROVAL
    job.approval = {"state": "awaiting", "at": iso(utcnow())}
    notices.job_event("job.awaiting_approval", job, recipients=_admin_emails(),
                      estimate_usd=job.cost_estimate, threshold_usd=threshold_usd())
    return True


def awaiting(limit: int = 200) -> list[TrainingJob]:
    """The jobs waiting for a decision, oldest first."""
    return list(db.session.scalars(select(TrainingJob).where(TrainingJob.status == JobStatus.AWAITING_APPROVAL)
                                   .order_by(TrainingJob.created_at).limit(limit)))


def _decide(job: TrainingJob, admin: User | None, action: str, values: dict) -> None:
    """Move the job out of ``awaiting_approval`` if it is still there (else ``JobStateError``)."""
    if admin is None or not admin.is_admin:
        raise Forbidden(f"only admins may {action} a job awaiting approval")
    won = db.session.execute(update(TrainingJob).where(TrainingJob.id == job.id,
                                                       TrainingJob.status == JobStatus.AWAITING_APPROVAL)
                             .values(**values, updated_at=utcnow())).rowcount
    db.session.refresh(job)
    if not won:
        db.session.rollback()
        raise JobStateError(job, action, "only a job awaiting approval can be approved or declined")


def _audit_decision(job: TrainingJob, admin: User, decision: str, reason: str | None) -> None:
    audit.record("job.approval_decided", actor=admin, target_type="job", target_id=job.id, job_id=job.id,
                 details={"decision": decision, "reason": reason or None, "estimate_usd": job.cost_estimate})


def approve(job: TrainingJob, admin: User, reason: str | None = None) -> TrainingJob:
    """An admin approves the job: it is queued and its dispatch enqueued; its owner is told. Commits."""
    decision = {"state": "approved", "by": admin.email if admin else None, "at": iso(utcnow()),
                "reason": reason or None, "estimate_usd": job.cost_estimate}
    _decide(job, admin, "approve", {"status": JobStatus.QUEUED, "approval": decision})
    _audit_decision(job, admin, "approved", reason)
    notices.job_event("job.approval_decided", job, decision="approved", decided_by=admin.email, reason=reason or None)
    db.session.commit()
    queue.enqueue(queue.DISPATCH, job.id)
    return job


def decline(job: TrainingJob, admin: User, reason: str) -> TrainingJob:
    """An admin declines the job: it is cancelled with the reason; its owner is told. Commits."""
    now = utcnow()
    decision = {"state": "declined", "by": admin.email if admin else None, "at": iso(now), "reason": reason,
                "estimate_usd": job.cost_estimate}
    _decide(job, admin, "decline", {
        "status": JobStatus.CANCELLED, "approval": decision, "completed_at": now,
        "error_type": ErrorType.CANCELLED.value, "error_user": True,
        "error_message": f"declined by {admin.email}: {reason}",
        "error_cause": f"An admin declined it: estimates above ${threshold_usd():,.2f} need an admin's approval.",
        "error_fix": DECLINED_FIX})
    notices.job_event("job.approval_decided", job, decision="declined", decided_by=admin.email, reason=reason)
    _audit_decision(job, admin, "declined", reason)
    notices.job_event("job.cancelled", job)      # the job ended: webhooks of job.cancelled hear it
    db.session.commit()
    return job
