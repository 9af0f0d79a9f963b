"""The team view: per user, this month's jobs, their success rate and their spend.

The month and the spend follow ``spending``'s rules (a calendar month in UTC; a job counts
in the month it was created; spent is the jobs' ``actual_cost``). The success rate is the
share of the month's *finished* jobs (completed, failed or cancelled) that completed; a
user with no finished job has none (not 0%). Every active user is listed, with zeros when
they ran nothing; a deactivated user only when they have jobs in the month.

Who sees what follows the budget page (``budgets.for_viewer``): everyone signed in sees
every user's jobs and success rate and the team's total; each person's spend is shown to
admins, and to each user their own.
"""
from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from sqlalchemy import select

from control.extensions import db
from control.models import JobStatus, User, utcnow
from control.services import spending
from control.services.spending import JobSpend


def member_line(user_id: str, email: str, role: str, active: bool, jobs: list[JobSpend]) -> dict:
    """One user's figures from their month's jobs.

    >>> from datetime import timezone
    >>> day = datetime(2026, 4, 1, tzinfo=timezone.utc)
    >>> rows = [JobSpend(i, i, "u", "u@x", (), day, s, 1.0, c) for i, s, c in
    ...         [("a", "completed", 2.0), ("b", "failed", 0.5), ("c", "training", 0.25)]]
    >>> line = member_line("u", "u@x", "engineer", True, rows)
    >>> line["jobs"], line["finished"], line["completed"], line["success_rate"], line["spent_usd"]
    (3, 2, 1, 0.5, 2.75)
    >>> member_line("v", "v@x", "engineer", True, [])["success_rate"] is None
    True
    """
    finished = [j for j in jobs if j.finished]
    completed = sum(1 for j in finished if j.status == JobStatus.COMPLETED)
    return {"user_id": user_id, "email": email, "role": role, "active": active, "jobs": len(jobs),
            "running": sum(1 for j in jobs if not j.finished), "finished": len(finished), "completed": completed,
            "failed": sum(1 for j in finished if j.status == JobStatus.FAILED),
            "success_rate": round(completed / len(finished), 4) if finished else None,
            "spent_usd": spending.spent(jobs)}


def lines(people: list[tuple[str, str, str, bool]], rows: list[JobSpend]) -> list[dict]:
    """Each person's line (``(id, email, role, active)``; a deactivated one only with jobs),
    the most jobs first, then by email."""
    by_owner: dict[str, list[JobSpend]] = defaultdict(list)
    for r in rows:
        by_owner[r.owner_id].append(r)
    out = [member_line(uid, email, role, active, by_owner.get(uid, []))
           for uid, email, role, active in people if active or by_owner.get(uid)]
    return sorted(out, key=lambda m: (-m["jobs"], m["email"]))


def month_view(month: datetime | None = None, now: datetime | None = None) -> dict:
    """The month's team figures (this month by default): ``members`` and the totals."""
    now = now or utcnow()
    start = month or spending.month_start(now)
    rows = spending.jobs_in(start)
    people = [(u.id, u.email, u.role, u.deactivated_at is None)
              for u in db.session.scalars(select(User).order_by(User.email))]
    members = lines(people, rows)
    team = member_line("", "", "", True, rows)
    return {"month": spending.month_label(start), "members": members, "jobs": team["jobs"],
            "finished": team["finished"], "completed": team["completed"], "success_rate": team["success_rate"],
            "spent_usd": team["spent_usd"]}


def for_viewer(view: dict, viewer: User) -> dict:
    """The view as ``viewer`` may see it: admins every spend; others their own and the
    team's total (``spent_usd`` None on the others' lines)."""
    if viewer.is_admin:
        return view
    return {**view, "members": [m if m["user_id"] == viewer.id else {**m, "spent_usd": None}
                                for m in view["members"]]}
