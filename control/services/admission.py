"""Starting a job: the owner's quota, the month's budget, and an admin's approval above
``APPROVAL_THRESHOLD_USD``, before it is queued for a GPU (``lifecycle.queue_for_dispatch``)."""
from __future__ import annotations

from control.extensions import db
from control.models import JobStatus, TrainingJob, User
from control.services import approvals, audit, budgets, lifecycle, quotas
from control.services.exceptions import JobStateError


def start(job: TrainingJob, by: User | None = None, budget_override: dict | None = None) -> TrainingJob:
    """A pending job is queued and its dispatch enqueued, if its owner has room under
    ``MAX_ACTIVE_JOBS_PER_USER`` (else ``QuotaExceeded``) and its estimate fits the month's
    budget (else ``BudgetExceeded``, unless an admin overrides); one estimated above
    ``APPROVAL_THRESHOLD_USD`` waits for an admin instead. Any other is refused. Commits."""
    if job.status != JobStatus.PENDING:
        raise JobStateError(job, "start", "only a pending job can be started")
    quotas.check_active(job.created_by)          # the owner's MAX_ACTIVE_JOBS_PER_USER
    budgets.check_start(job, by, budget_override)
    held = approvals.hold_for_approval(job)
    audit.record("job.started", actor=by, target_type="job", target_id=job.id, job_id=job.id,
                 details={"awaiting_approval": held, "estimate_usd": job.cost_estimate,
                          **({"budget_override": budget_override["reason"]} if budget_override else {})})
    if held:
        db.session.commit()
        return job
    return lifecycle.queue_for_dispatch(job)
