"""The month's money, as the budget page, the API and the accounting CSV show it.

The rules, in one place:

- **A month** is a calendar month in UTC. **A job's cost counts in the month it was
  created**, whenever it is billed: a job created on the 31st and running into the 1st
  counts in the month it was created, so a month's figures, once it has ended and its
  jobs have, no longer change.
- **spent**: the sum of the month's jobs' ``actual_cost`` (a running job's cost so far
  included).
- **committed**: what the month's jobs that are queued, running or awaiting approval
  are still expected to cost: ``max(0, (projected_cost_usd or cost_estimate or 0) -
  actual_cost)`` each.
- **remaining**: ``limit - spent - committed``.
- **forecast** to the month's end: ``spent + committed + pace * days_left``, where the
  pace is the spend of the month's finished jobs per day elapsed (at least one day), so a
  month's habit of new jobs is assumed to go on.
- **by day**, **by user** and **by tag**: the spend of the jobs created that day, by
  that user, with that tag. A job with two tags counts under both (the tags can add up to
  more than what was spent); an untagged job counts under ``(none)``.

Everything here but ``jobs_in`` and ``totals`` (which read the database) is a pure function
of ``JobSpend`` rows.
"""
from __future__ import annotations

import csv
import io
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import case, func, select

from control.extensions import db
from control.models import JobStatus, TrainingJob, User, iso
from control.services.formatting import spreadsheet_cell

#: Still to be paid for: started and not ended, or waiting for an admin's approval.
COMMITTING = frozenset(JobStatus.active()) | {JobStatus.AWAITING_APPROVAL}
UNTAGGED = "(none)"
FORECAST_RULE = ("spent + committed + the pace of the month's finished jobs (their spend per day "
                 "elapsed, at least one day) times the days left")
CSV_FIELDS = ("id", "name", "owner", "tags", "created_at", "status", "cost_estimate_usd", "actual_cost_usd")
PLACES = 4      # dollars to the hundredth of a cent: a CPU job costs fractions of a cent


@dataclass(frozen=True)
class JobSpend:
    """What the money figures need of one job."""

    id: str
    name: str
    owner_id: str
    owner: str                   # the owner's email
    tags: tuple[str, ...]
    created_at: datetime
    status: str
    estimate: float | None
    actual: float
    projected: float | None = None

    @property
    def committed(self) -> float:
        """What this job is still expected to cost (0 unless it is running, queued or waiting)."""
        if self.status not in COMMITTING:
            return 0.0
        return max(0.0, (self.projected if self.projected is not None else self.estimate or 0.0) - self.actual)

    @property
    def finished(self) -> bool:
        return self.status in JobStatus.FINAL


# ---------------------------------------------------------------------- months
def month_start(moment: datetime) -> datetime:
    """The first instant (UTC) of the month ``moment`` falls in.

    >>> month_start(datetime(2026, 12, 31, 23, 59, tzinfo=timezone.utc)).isoformat()
    '2026-12-01T00:00:00+00:00'
    """
    moment = moment.astimezone(timezone.utc)
    return datetime(moment.year, moment.month, 1, tzinfo=timezone.utc)


def next_month(start: datetime) -> datetime:
    """The first instant of the month after ``start``'s.

    >>> next_month(datetime(2026, 12, 1, tzinfo=timezone.utc)).date().isoformat()
    '2027-01-01'
    """
    return datetime(start.year + start.month // 12, start.month % 12 + 1, 1, tzinfo=timezone.utc)


def month_label(start: datetime) -> str:
    """
    >>> month_label(datetime(2026, 3, 1, tzinfo=timezone.utc))
    '2026-03'
    """
    return f"{start.year:04d}-{start.month:02d}"


def parse_month(label: str) -> datetime:
    """The first instant of the month ``YYYY-MM``; ValueError otherwise.

    >>> parse_month("2026-03").isoformat()
    '2026-03-01T00:00:00+00:00'
    """
    year, sep, month = (label or "").partition("-")
    if not (sep and len(year) == 4 and len(month) == 2 and year.isdigit() and month.isdigit()
            and 1 <= int(month) <= 12):
        raise ValueError(f"expected a month as YYYY-MM (2026-03), got {label!r}")
    return datetime(int(year), int(month), 1, tzinfo=timezone.utc)


def days_of(start: datetime, now: datetime) -> list[str]:
    """The month's days up to today (every day of a month that has ended), as ``YYYY-MM-DD``.

    >>> days_of(datetime(2026, 2, 1, tzinfo=timezone.utc), datetime(2026, 2, 3, 9, tzinfo=timezone.utc))
    ['2026-02-01', '2026-02-02', '2026-02-03']
    >>> len(days_of(datetime(2026, 2, 1, tzinfo=timezone.utc), datetime(2026, 5, 1, tzinfo=timezone.utc)))
    28
    """
    last = min(next_month(start) - timedelta(days=1), now.astimezone(timezone.utc))
    return [(start + timedelta(days=i)).date().isoformat() for i in range((last.date() - start.date()).days + 1)]


# ---------------------------------------------------------------------- figures
def dollars(value: float) -> float:
    return round(value, PLACES)


def spent(rows: list[JobSpend]) -> float:
    return dollars(sum(r.actual for r in rows))


def committed(rows: list[JobSpend]) -> float:
    return dollars(sum(r.committed for r in rows))


def forecast(rows: list[JobSpend], start: datetime, now: datetime) -> float:
    """Spent and committed, plus the finished jobs' pace over the days left (``FORECAST_RULE``).

    >>> day = datetime(2026, 4, 1, tzinfo=timezone.utc)
    >>> done = JobSpend("a", "a", "u", "u@x", (), day, "completed", 10.0, 10.0)
    >>> forecast([done], day, day + timedelta(days=10))     # $1 a day, 20 days left
    30.0
    >>> forecast([done], day, day + timedelta(days=40))     # the month has ended
    10.0
    """
    end = next_month(start)
    elapsed_days = max(1.0, (min(now, end) - start).total_seconds() / 86400)
    days_left = max(0.0, (end - now).total_seconds() / 86400)
    pace = sum(r.actual for r in rows if r.finished) / elapsed_days
    return dollars(spent(rows) + committed(rows) + pace * days_left)


def by_day(rows: list[JobSpend], start: datetime, now: datetime) -> list[dict]:
    """Each day of the month so far: the spend and count of the jobs created that day."""
    spend, count = defaultdict(float), defaultdict(int)
    for r in rows:
        day = r.created_at.astimezone(timezone.utc).date().isoformat()
        spend[day] += r.actual
        count[day] += 1
    return [{"day": d, "spent_usd": dollars(spend[d]), "jobs": count[d]} for d in days_of(start, now)]


def by_user(rows: list[JobSpend]) -> list[dict]:
    """Each owner's spend and commitment, the biggest spender first."""
    groups: dict[str, list[JobSpend]] = defaultdict(list)
    for r in rows:
        groups[r.owner_id].append(r)
    out = [{"user_id": uid, "email": jobs[0].owner, "spent_usd": spent(jobs),
            "committed_usd": committed(jobs), "jobs": len(jobs)} for uid, jobs in groups.items()]
    return sorted(out, key=lambda u: (-u["spent_usd"], -u["committed_usd"], u["email"]))


def by_tag(rows: list[JobSpend]) -> list[dict]:
    """Each tag's spend and commitment (a job counts under each of its tags; untagged under
    ``(none)``), the biggest first.

    >>> day = datetime(2026, 4, 1, tzinfo=timezone.utc)
    >>> rows = [JobSpend("a", "a", "u", "u@x", ("acme", "q2"), day, "completed", 1.0, 2.0),
    ...         JobSpend("b", "b", "u", "u@x", (), day, "completed", 1.0, 1.0)]
    >>> [(t["tag"], t["spent_usd"]) for t in by_tag(rows)]
    [('acme', 2.0), ('q2', 2.0), ('(none)', 1.0)]
    """
    groups: dict[str, list[JobSpend]] = defaultdict(list)
    for r in rows:
        for tag in dict.fromkeys(r.tags or (UNTAGGED,)):
            groups[tag].append(r)
    out = [{"tag": tag, "spent_usd": spent(jobs), "committed_usd": committed(jobs), "jobs": len(jobs)}
           for tag, jobs in groups.items()]
    return sorted(out, key=lambda t: (-t["spent_usd"], -t["committed_usd"], t["tag"]))


def summary(rows: list[JobSpend], limit: float, start: datetime, now: datetime) -> dict:
    """The month's figures (see the module's rules)."""
    out, owed = spent(rows), committed(rows)
    return {"month": month_label(start), "starts_at": iso(start), "ends_at": iso(next_month(start)),
            "limit_usd": limit, "spent_usd": out, "committed_usd": owed,
            "remaining_usd": dollars(limit - out - owed),
            "percent_spent": round(100 * out / limit, 1) if limit else None,
            "over_limit": out >= limit, "forecast_usd": forecast(rows, start, now),
            "forecast_rule": FORECAST_RULE, "jobs": len(rows),
            "awaiting_approval": sum(1 for r in rows if r.status == JobStatus.AWAITING_APPROVAL),
            "by_day": by_day(rows, start, now), "by_user": by_user(rows), "by_tag": by_tag(rows)}


# ---------------------------------------------------------------------- the accounting CSV
def csv_text(rows: list[JobSpend]) -> str:
    """One row per job, oldest first, then a total row whose actual cost is ``spent``: the
    dashboard's figure for the month, to the same hundredth of a cent."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(CSV_FIELDS)
    for r in sorted(rows, key=lambda r: (r.created_at, r.id)):
        writer.writerow([r.id, spreadsheet_cell(r.name), spreadsheet_cell(r.owner), spreadsheet_cell("; ".join(r.tags)), iso(r.created_at),
                         r.status, "" if r.estimate is None else dollars(r.estimate), dollars(r.actual)])
    writer.writerow(["total", f"{len(rows)} jobs", "", "", "", "",
                     dollars(sum(r.estimate or 0.0 for r in rows)), spent(rows)])
    return buf.getvalue()


# ---------------------------------------------------------------------- reading the database
def _in_month(start: datetime):
    return (TrainingJob.created_at >= start) & (TrainingJob.created_at < next_month(start))


def jobs_in(start: datetime) -> list[JobSpend]:
    """The month's jobs (created in it), with their owners' emails."""
    rows = db.session.execute(
        select(TrainingJob.id, TrainingJob.name, TrainingJob.created_by, User.email, TrainingJob.tags,
               TrainingJob.created_at, TrainingJob.status, TrainingJob.cost_estimate,
               TrainingJob.actual_cost, TrainingJob.projected_cost_usd)
        .join(User, User.id == TrainingJob.created_by).where(_in_month(start))).all()
    return [JobSpend(id=r[0], name=r[1], owner_id=r[2], owner=r[3], tags=tuple(r[4] or ()), created_at=r[5],
                     status=r[6], estimate=r[7], actual=r[8] or 0.0, projected=r[9]) for r in rows]


def totals(start: datetime) -> tuple[float, float]:
    """The month's spent and committed, summed by the database (the same rules as
    ``JobSpend``): what starting a job and the sweep's enforcement need, in one query."""
    actual = func.coalesce(TrainingJob.actual_cost, 0.0)
    left = func.coalesce(TrainingJob.projected_cost_usd, TrainingJob.cost_estimate, 0.0) - actual
    owed = case((TrainingJob.status.in_(COMMITTING) & (left > 0), left), else_=0.0)
    out, due = db.session.execute(select(func.coalesce(func.sum(actual), 0.0),
                                         func.coalesce(func.sum(owed), 0.0)).where(_in_month(start))).one()
    return dollars(float(out)), dollars(float(due))
