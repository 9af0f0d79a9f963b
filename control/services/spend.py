"""A running job's money: its projected final cost, its cost alerts, and its spend cap.

After every batch of events (``ingest``), once the cost so far is settled:

- **Projection.** Cost so far, plus the steps left at the measured time a step, plus the
  evaluation (its held-out tokens at the measured speed, ``shared/cost.py``).
- **Cost alerts.** The owner hears when the cost passes 80% and 95% of the estimate while
  steps remain (so they can cancel early), and once when the projected or actual cost
  passes the estimate by more than 20%. Each is a warning in the job's event log, a badge
  (``cost_alerts``) and a notice.
- **Spend cap.** When the projected cost passes ``max_cost_usd`` (or the cost reaches it),
  the job is asked to checkpoint and stop (``stopping``), failing as ``spend_cap``.
"""
from __future__ import annotations

from control.extensions import db
from control.models import JobStatus, MetricPoint, TrainingEvent, TrainingJob, utcnow
from control.services import notices, stopping
from control.services.upsert import insert_for_dialect
from shared import cost
from shared.errors import ErrorType

ALERT_PERCENTS = (80, 95)
OVER_ESTIMATE = 0.20
# The control plane's own warnings in the event log: seqs far above any handler's.
CONTROL_SEQ = {"cost_80": 10**12 + 1, "cost_95": 10**12 + 2, "over_estimate": 10**12 + 3, "spend_cap": 10**12 + 4}


WARM_UP_STEPS = 3     # the first step (kernels, caches) is slow: no projection from fewer


def _points(job: TrainingJob) -> tuple[MetricPoint | None, MetricPoint | None]:
    """The latest metrics point, and the first one (its step 1, or the first after a resume)."""
    base = db.select(MetricPoint).where(MetricPoint.training_job_id == job.id, MetricPoint.elapsed_seconds.is_not(None))
    latest = db.session.scalars(base.order_by(MetricPoint.step.desc()).limit(1)).first()
    first = db.session.scalars(base.order_by(MetricPoint.step.asc()).limit(1)).first()
    return latest, first


def project(job: TrainingJob) -> float | None:
    """The job's projected final cost at the time a step measured after the first (which
    includes the warm-up); None before ``WARM_UP_STEPS`` steps."""
    latest, first = _points(job)
    if latest is None or first is None or latest.step - first.step < WARM_UP_STEPS - 1:
        return None
    per_step = max(0.0, latest.elapsed_seconds - first.elapsed_seconds) / (latest.step - first.step)
    price = job.configuration.get("gpu", {}).get("price_per_hour", 0.0)
    estimate = job.configuration.get("estimate") or {}
    tps = latest.tokens_per_second or estimate.get("tokens_per_second") or 0
    eval_s = (estimate.get("evaluation_tokens", 0) / (tps * cost.EVAL_SPEEDUP)) if tps else 0.0
    return cost.projected_cost(cost_so_far=job.actual_cost or 0.0, step=latest.step,
                               total_steps=job.total_steps, training_seconds=per_step * latest.step,
                               price_per_hour=price, evaluation_seconds=eval_s)


def check_final(job: TrainingJob) -> None:
    """Once a job has ended and its billed time is in: the over-estimate alert on what it
    actually cost. The caller commits."""
    estimate, spent = job.cost_estimate or 0.0, job.actual_cost or 0.0
    if job.status == JobStatus.COMPLETED and estimate > 0 and spent > estimate * (1 + OVER_ESTIMATE):
        _alert(job, "over_estimate", "job.over_estimate",
               f"the job cost ${spent:.2f}, {spent / estimate - 1:.0%} over its estimate of ${estimate:.2f}",
               projected_usd=spent)


def check(job: TrainingJob) -> None:
    """Project, alert and enforce the cap for a running job. The caller commits."""
    if job.is_final or job.status in (JobStatus.PENDING, JobStatus.AWAITING_APPROVAL):
        return
    projected = project(job)
    if projected is not None:
        job.projected_cost_usd = projected
    spent, estimate = job.actual_cost or 0.0, job.cost_estimate or 0.0
    steps_left = job.total_steps is not None and (job.current_step or 0) < job.total_steps
    if estimate > 0:
        for percent in ALERT_PERCENTS:
            if steps_left and spent >= estimate * percent / 100:
                _alert(job, f"cost_{percent}", "job.cost_alert",
                       f"the job has cost ${spent:.2f}, {spent / estimate:.0%} of its estimate of ${estimate:.2f}, "
                       f"with {job.total_steps - (job.current_step or 0)} of {job.total_steps} steps left",
                       percent=percent)
        heading = max(spent, projected or 0.0)
        if heading > estimate * (1 + OVER_ESTIMATE):
            _alert(job, "over_estimate", "job.over_estimate",
                   f"the job is heading for ${heading:.2f}, {heading / estimate - 1:.0%} over its estimate of "
                   f"${estimate:.2f}", projected_usd=heading)
    cap = job.max_cost_usd
    if cap is not None and not job.stop_request and max(spent, projected or 0.0) > cap:
        what = f"projected cost ${projected:.2f}" if (projected or 0.0) > spent else f"cost ${spent:.2f}"
        message = f"the job's {what} passed its spend cap of ${cap:.2f} (spent so far: ${spent:.2f})"
        if stopping.request_stop(job, ErrorType.SPEND_CAP, message) != "nothing to stop":
            _warn(job, "spend_cap", message)


def _alert(job: TrainingJob, code: str, kind: str, message: str, **extra) -> None:
    """Once a job: the badge, the warning in its event log, the notice."""
    if code in (job.cost_alerts or []):
        return
    job.cost_alerts = [*(job.cost_alerts or []), code]
    _warn(job, code, message)
    notices.job_event(kind, job, dedupe_key=f"{kind}:{job.id}:{code}", message=message,
                      projected_cost_usd=job.projected_cost_usd, **extra)


def _warn(job: TrainingJob, code: str, message: str) -> None:
    attempt = job.current_attempt
    number = attempt.number if attempt else 1
    seq = CONTROL_SEQ[code]
    now = utcnow()
    payload = {"type": "warning", "job_id": job.id, "attempt": number, "seq": seq,
               "ts": now.isoformat(timespec="milliseconds"), "code": code, "message": message}
    db.session.execute(insert_for_dialect(TrainingEvent).values(
        training_job_id=job.id, attempt=number, seq=seq, type="warning", ts=payload["ts"], payload=payload,
        received_at=now).on_conflict_do_nothing(index_elements=["training_job_id", "attempt", "seq"]))
