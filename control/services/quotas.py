"""Each user's quotas, so that one user cannot fill the queue or the GPUs for everyone:

- ``MAX_ACTIVE_JOBS_PER_USER``: jobs and re-evaluations queued or running at once (each holds a
  GPU), checked when a job or a re-evaluation starts;
- ``MAX_JOBS_PER_HOUR``: jobs and re-evaluations created in any rolling hour, checked when
  one is created.

Admins have the same quotas. ``0`` switches a quota off. A refusal is ``QuotaExceeded``
(HTTP 429 with ``Retry-After``), naming the setting and its value.

The hourly count is a moving window in the rate limiter's storage (the app's Redis), keyed
by the user, so deleting jobs does not give the hour back; the active count is the jobs
table itself, counted with the owner's row locked so that two starts at once cannot both
take the last place (Postgres; SQLite writes one at a time anyway).
"""
from __future__ import annotations

import logging
import math
import time

from flask import current_app
from limits import RateLimitItemPerHour
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter
from sqlalchemy import func, select

from control.config import rate_limit_storage_uri
from control.extensions import db
from control.models import EvaluationRun, EvaluationStatus, JobStatus, TrainingJob, User
from control.services.exceptions import QuotaExceeded

ACTIVE_RETRY_AFTER_S = 60     # a hint: jobs end in minutes, not seconds

log = logging.getLogger(__name__)


def _hourly() -> MovingWindowRateLimiter:
    app = current_app._get_current_object()
    limiter = app.extensions.get("brightrun.job_quota")
    if limiter is None:
        uri = app.config.get("RATELIMIT_STORAGE_URI") or rate_limit_storage_uri(app.config.get("REDIS_URL"))
        limiter = app.extensions["brightrun.job_quota"] = MovingWindowRateLimiter(storage_from_string(uri))
    return limiter


def _lock_owner(user_id: str) -> None:
    """Hold the owner's row until the caller commits: one quota decision at a time per user."""
    db.session.execute(select(User.id).where(User.id == user_id).with_for_update())


def check_active(user_id: str | None) -> None:
    """Room for one more queued-or-running job of ``user_id``, or ``QuotaExceeded``. Locks
    the owner's row until the caller commits."""
    limit = current_app.config["MAX_ACTIVE_JOBS_PER_USER"]
    if not limit or user_id is None:
        return
    _lock_owner(user_id)
    active = db.session.scalar(select(func.count()).select_from(TrainingJob).where(
        TrainingJob.created_by == user_id, TrainingJob.status.in_(JobStatus.active())))
    active += db.session.scalar(select(func.count()).select_from(EvaluationRun).where(
        EvaluationRun.created_by == user_id, EvaluationRun.status.in_(EvaluationStatus.active())))
    if active >= limit:
        db.session.rollback()                   # let the owner's row go
        raise QuotaExceeded(
            "MAX_ACTIVE_JOBS_PER_USER", limit,
            f"you have {active} job{'s' if active != 1 else ''} or re-evaluation{'s' if active != 1 else ''} "
            "queued or running, and the limit "
            f"(MAX_ACTIVE_JOBS_PER_USER) is {limit} at once: wait for one to end or cancel one, "
            "then start this one (a saved job waits, pending, until you start it)",
            ACTIVE_RETRY_AFTER_S)


def take_hourly(user: User) -> None:
    """Count one job created by ``user`` in the rolling hour, or ``QuotaExceeded`` if the hour
    is full (nothing counted then)."""
    limit = current_app.config["MAX_JOBS_PER_HOUR"]
    if not limit:
        return
    item = RateLimitItemPerHour(limit, namespace="brightrun-jobs-per-hour")
    limiter = _hourly()
    try:
        if limiter.hit(item, user.id):
            return
    except Exception as exc:      # noqa: BLE001 - the counter's storage is down: do not fail the job for it
        log.warning("hourly job quota not counted for %s: %s: %s", user.id, type(exc).__name__, exc)
        return
    reset_at, _ = limiter.get_window_stats(item, user.id)
    raise QuotaExceeded(
        "MAX_JOBS_PER_HOUR", limit,
        f"you created {limit} jobs in the last hour, the limit (MAX_JOBS_PER_HOUR) is {limit} an "
        "hour: try again later, or reuse a job you saved (retry or start it)",
        math.ceil(max(1.0, reset_at - time.time())))
