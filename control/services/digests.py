"""The daily digest: for each user who wants one, once a day from ``DIGEST_HOUR_UTC``
(UTC), a ``digest`` notice with their jobs finished, failed and running in the last 24
hours and their spend (the last 24 hours, this month). The worker's sweep calls
``schedule`` every round; the notice's once-key ``digest:<user>:<date>`` makes it once a
day under any race, and the notice fans out like any other (``notices``)."""
from __future__ import annotations

from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import or_, select
from sqlalchemy.orm import selectinload

from control.extensions import db
from control.models import JobStatus, Notice, TrainingJob, utcnow
from control.services import notices
from control.services.notifications import preferences

MAX_LISTED = 50          # jobs named per list; the totals count them all


def dedupe_key(user_id: str, day) -> str:
    return f"digest:{user_id}:{day.isoformat()}"


def schedule(now=None) -> int:
    """Make today's digest notices that are due and not made yet; how many were made. Commits."""
    now = now or utcnow()
    if now.hour < int(current_app.config["DIGEST_HOUR_UTC"]):
        return 0
    users = preferences.digest_users()
    if not users:
        return 0
    keys = {dedupe_key(u, now.date()): u for u in users}
    done = set(db.session.scalars(select(Notice.dedupe_key).where(Notice.dedupe_key.in_(keys))))
    made = 0
    for key, user_id in keys.items():
        if key not in done and notices.emit("digest", user_id=user_id, payload=summary(user_id, now),
                                            dedupe_key=key) is not None:
            made += 1
    db.session.commit()
    return made


def overlap_s(start: datetime | None, end: datetime | None, since: datetime, until: datetime) -> float:
    """Seconds of [start, end] (an open end: ``until``) inside [since, until].

    >>> t = datetime(2026, 12, 1, 12)
    >>> overlap_s(t - timedelta(hours=30), t - timedelta(hours=20), t - timedelta(hours=24), t)
    14400.0
    >>> overlap_s(None, None, t, t), overlap_s(t - timedelta(hours=1), None, t - timedelta(hours=24), t)
    (0.0, 3600.0)
    """
    if start is None:
        return 0.0
    return max(0.0, (min(end or until, until) - max(start, since)).total_seconds())


def spend_between(job: TrainingJob, since: datetime, until: datetime) -> float:
    """The share of the job's cost run between ``since`` and ``until``: its cost in the
    proportion of its attempts' running time inside the window."""
    total = sum(a.running_seconds(until) for a in job.attempts)
    if not total or not job.actual_cost:
        return 0.0
    inside = sum(overlap_s(a.started_at, a.ended_at, since, until) for a in job.attempts)
    return float(job.actual_cost) * min(1.0, inside / total)


def summary(user_id: str, now: datetime) -> dict:
    """What a user's digest says: jobs finished, failed and running, and their spend."""
    since = now - timedelta(hours=24)
    month = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    jobs = db.session.scalars(
        select(TrainingJob).where(TrainingJob.created_by == user_id, TrainingJob.started_at.is_not(None),
                                  or_(TrainingJob.completed_at.is_(None), TrainingJob.completed_at >= min(since, month)))
        .options(selectinload(TrainingJob.attempts)).order_by(TrainingJob.created_at)).all()
    ended = [j for j in jobs if j.completed_at is not None and j.completed_at >= since]
    lists = {"finished": [j for j in ended if j.status == JobStatus.COMPLETED],
             "failed": [j for j in ended if j.status == JobStatus.FAILED],
             "running": [j for j in jobs if j.status in JobStatus.active()]}
    out = {key: [{"id": j.id, "name": j.name} for j in found[:MAX_LISTED]] for key, found in lists.items()}
    out["totals"] = {key: len(found) for key, found in lists.items()}
    out["spend_24h_usd"] = round(sum(spend_between(j, since, now) for j in jobs), 4)
    out["spend_month_usd"] = round(sum(spend_between(j, month, now) for j in jobs), 4)
    out["date"] = now.date().isoformat()
    return out
