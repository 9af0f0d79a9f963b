"""The team's monthly budget: the limit, what is spent and committed, alerts at thresholds,
refusing a start that would pass it (unless an admin overrides), and stopping running jobs
when the month's spend reaches it.

- The budget is one row, ``BudgetSetting`` ``"team"``, made with the documents' defaults
  ($500; 80% by email, 95% by email and Slack; the active admins as recipients) the first
  time it is read.
- The figures follow ``spending``'s rules: a calendar month in UTC, a job's cost counting
  in the month it was created.
- ``check_start``: a job whose estimate, on top of the month's spent and committed, would
  pass the limit is refused (``BudgetExceeded``, naming the numbers), unless an admin gives
  an override (``{"reason"}``), which is recorded on the job and also keeps it running past
  the limit.
- ``enforce`` (the sweep's, every few seconds): each threshold the month's spend has
  reached is a ``budget.threshold`` notice, once a month (its dedupe key); at the limit,
  every running or queued job of the month that no admin overrode is asked to checkpoint
  and stop (``stopping.request_stop``, ``budget_exceeded``).
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from control.extensions import db
from control.models import (DEFAULT_ALERTS, DEFAULT_LIMIT_USD, BudgetSetting, JobStatus, Notice, TrainingJob, User,
                            iso, utcnow)
from control.services import audit, notices, spending, stopping
from control.services.exceptions import BudgetExceeded, Forbidden
from control.services.upsert import insert_for_dialect
from shared.errors import ErrorType

TEAM = "team"
#: Jobs the hard limit stops: every active one but those being cancelled already.
STOPPABLE = tuple(s for s in JobStatus.active() if s != JobStatus.CANCEL_REQUESTED)


# ---------------------------------------------------------------------- the setting
def team_setting(lock: bool = False) -> BudgetSetting:
    """The team's budget row, made with the defaults if there is none yet (the caller
    commits; two first reads at once make one row). ``lock``: held until the commit, so two
    starts at once are checked one after the other."""
    row = db.session.get(BudgetSetting, TEAM, with_for_update=lock or None)
    if row is None:
        db.session.execute(insert_for_dialect(BudgetSetting).values(
            id=TEAM, limit_usd=DEFAULT_LIMIT_USD, alerts=[dict(a) for a in DEFAULT_ALERTS], recipients=[],
            updated_at=utcnow()).on_conflict_do_nothing(index_elements=["id"]))
        row = db.session.get(BudgetSetting, TEAM, with_for_update=lock or None)
    return row


def admin_emails() -> list[str]:
    """The active admins' emails: who hears of the budget when no recipients are set."""
    return list(db.session.scalars(select(User.email).where(User.role == "admin", User.deactivated_at.is_(None))
                                   .order_by(User.email)))


def emails_of(user_ids) -> dict[str, str]:
    """The emails of these users, by id (the budget page names owners)."""
    ids = list(user_ids)
    return dict(db.session.execute(select(User.id, User.email).where(User.id.in_(ids))).all()) if ids else {}


def recipients(row: BudgetSetting) -> list[str]:
    return list(row.recipients) or admin_emails()


def _require_admin(user: User | None, what: str) -> None:
    if user is None or not user.is_admin:
        raise Forbidden(f"only admins may {what}")


def set_limit(user: User, limit_usd: float) -> BudgetSetting:
    """Set the monthly limit (admins). Commits."""
    _require_admin(user, "set the monthly budget")
    row = team_setting(lock=True)
    audit.record("budget.changed", actor=user, target_type="budget", target_id=TEAM,
                 details={"limit_usd": {"from": row.limit_usd, "to": float(limit_usd)}})
    row.limit_usd, row.updated_by = float(limit_usd), user.id
    db.session.commit()
    return row


def set_alerts(user: User, alerts: list[dict], emails: list[str]) -> BudgetSetting:
    """Set the thresholds (``{"percent", "channels"}``, validated by the schema) and the
    recipients (empty: the active admins) (admins). Commits."""
    _require_admin(user, "set the budget's alerts")
    row = team_setting(lock=True)
    row.alerts = sorted(({"percent": a["percent"], "channels": list(a["channels"])} for a in alerts),
                        key=lambda a: a["percent"])
    row.recipients, row.updated_by = list(emails), user.id
    audit.record("budget.alerts_changed", actor=user, target_type="budget", target_id=TEAM,
                 details={"alerts": row.alerts, "recipients": list(emails)})
    db.session.commit()
    return row


def alert_settings() -> dict:
    """The thresholds and recipients (``alerts_of``). Commits the first time (the row is made)."""
    answer = alerts_of(team_setting())
    db.session.commit()
    return answer


def alerts_of(row: BudgetSetting) -> dict:
    """The thresholds and recipients as the API shows them."""
    return {"alerts": row.alerts, "recipients": list(row.recipients), "effective_recipients": recipients(row),
            "updated_by": row.updated_by, "updated_at": iso(row.updated_at)}


# ---------------------------------------------------------------------- the figures
def alert_key(month: str, percent: int) -> str:
    """A threshold's once-a-month key: its notice's ``dedupe_key``.

    >>> alert_key("2026-03", 80)
    'budget:2026-03:80'
    """
    return f"budget:{month}:{percent}"


def _alerted(month: str, percents) -> dict[int, datetime]:
    keys = {alert_key(month, p): p for p in percents}
    rows = db.session.execute(select(Notice.dedupe_key, Notice.created_at).where(Notice.dedupe_key.in_(keys))).all()
    return {keys[k]: at for k, at in rows}


def monthly(month: datetime | None = None, now: datetime | None = None) -> dict:
    """The month's figures (``spending.summary``; this month by default) with the limit and
    each threshold's state. Commits the first time (the team's row is made)."""
    now = now or utcnow()
    start = month or spending.month_start(now)
    row = team_setting()
    db.session.commit()
    figures = spending.summary(spending.jobs_in(start), row.limit_usd, start, now)
    alerted = _alerted(figures["month"], [a["percent"] for a in row.alerts])
    figures["alerts"] = [{"percent": a["percent"], "channels": a["channels"],
                          "reached": figures["spent_usd"] * 100 >= row.limit_usd * a["percent"],
                          "alerted_at": iso(alerted.get(a["percent"]))} for a in row.alerts]
    return figures


def for_viewer(figures: dict, viewer: User) -> dict:
    """The month's figures as ``viewer`` may see them: admins everyone's spend by user,
    others only their own line (the totals, days and tags are the team's)."""
    if viewer.is_admin:
        return figures
    return {**figures, "by_user": [u for u in figures["by_user"] if u.get("email") == viewer.email]}


def monthly_csv(month: datetime | None = None) -> tuple[str, str]:
    """The month (``YYYY-MM``; this month by default) and its jobs for accounting
    (``spending.csv_text``): its total is ``monthly``'s spent."""
    start = month or spending.month_start(utcnow())
    return spending.month_label(start), spending.csv_text(spending.jobs_in(start))


# ---------------------------------------------------------------------- starting a job
def check_start(job: TrainingJob, by: User | None, override: dict | None) -> None:
    """Raise ``BudgetExceeded`` if starting ``job`` at its estimate would pass this month's
    limit (spent + committed + its estimate, now: a job made last month and started today is
    checked against today's month); an admin's
    ``override`` ({"reason"}) is recorded on the job instead, and keeps it running past the
    limit. Only admins may override (``Forbidden``). The caller commits, which releases the
    budget's row: two starts at once are checked one after the other."""
    if override is not None:
        _require_admin(by, "override the monthly budget (budget_override)")
    row = team_setting(lock=True)
    start = spending.month_start(utcnow())
    spent, committed = spending.totals(start)
    estimate = spending.dollars(job.cost_estimate or 0.0)
    over = spending.dollars(spent + committed + estimate - row.limit_usd)
    if override is not None:
        job.budget_override = {"reason": override["reason"], "by": by.email, "at": iso(utcnow()),
                               "over_by_usd": max(0.0, over)}
        return
    if over > 0:
        figures = {"month": spending.month_label(start), "limit_usd": row.limit_usd, "spent_usd": spent,
                   "committed_usd": committed, "estimate_usd": estimate, "over_by_usd": over}
        raise BudgetExceeded(
            f"starting job {job.id} would pass the team's budget for {figures['month']} by ${over:,.2f}: "
            f"limit ${row.limit_usd:,.2f}, spent ${spent:,.2f}, committed ${committed:,.2f}, this job's "
            f"estimate ${estimate:,.2f}. An admin can raise the limit or start it with "
            "budget_override {\"reason\": \"...\"}", figures)


# ---------------------------------------------------------------------- the sweep's turn
def enforce(now=None) -> dict:
    """The sweep's turn: alert at thresholds crossed (once a month each); at the limit, ask
    every running and queued job that no admin overrode to checkpoint and stop (one created
    last month and still running too: the limit is this month's, and it spends now).
    Returns what it did. Commits."""
    now = now or utcnow()
    row = team_setting()
    start = spending.month_start(now)
    month = spending.month_label(start)
    spent, committed = spending.totals(start)
    limit = row.limit_usd
    alerted = _alerted(month, [a["percent"] for a in row.alerts])
    sent = 0
    for threshold in sorted(row.alerts, key=lambda a: a["percent"]):
        percent = threshold["percent"]
        if percent in alerted or spent * 100 < limit * percent:
            continue
        payload = {"percent": percent, "channels": list(threshold["channels"]), "recipients": recipients(row),
                   "limit_usd": limit, "spent_usd": spent, "committed_usd": committed, "month": month}
        if notices.emit("budget.threshold", payload=payload, dedupe_key=alert_key(month, percent)) is not None:
            sent += 1
    done = {"asked": 0, "failed": 0}
    if spent >= limit:
        message = (f"the team's monthly budget is reached: ${spent:,.2f} spent in {month} of a "
                   f"${limit:,.2f} limit")
        jobs = db.session.scalars(select(TrainingJob).where(TrainingJob.status.in_(STOPPABLE))).all()
        for job in jobs:
            if job.budget_override or job.stop_request:
                continue
            outcome = stopping.request_stop(job, ErrorType.BUDGET_EXCEEDED, message)
            if outcome in done:
                done[outcome] += 1
    db.session.commit()
    return {"month": month, "alerts": sent, "stops_asked": done["asked"], "stopped": done["failed"]}
