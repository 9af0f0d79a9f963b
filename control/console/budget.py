"""The team's budget (``/budget``): every signed-in user sees the month's figures (spent,
committed, remaining, forecast; spend by day, by user and by tag), its CSV for accounting,
and the jobs awaiting approval. Admins also get the forms: the monthly limit
(``POST /budget/limit``), the alerts (``POST /budget/alerts``: up to five thresholds, a
percent and its channels each, and the recipients, one a line), and Approve / Decline (with
a reason) on each waiting job (``POST /budget/approval``). A refused form comes back on the
page with every problem and what was typed kept. The rules are ``spending``'s."""
from __future__ import annotations

import re

from flask import Response, flash, g, redirect, render_template, request, url_for
from pydantic import ValidationError

from control.console.blueprint import bp
from control.schemas.money import MAX_THRESHOLDS, ApprovalRequest, BudgetAlerts, BudgetLimit, MonthQuery
from control.services import approvals, budgets, spending
from control.services.access import visible_job
from control.services.calibration import calibration
from control.services.exceptions import Forbidden, JobStateError


# ---------------------------------------------------------------------- reading the forms
def _where(loc: tuple, rows: list[int]) -> str:
    """A validation error's place in the form's words.

    >>> _where(("alerts", 1, "percent"), [1, 3]), _where(("recipients", 0), []), _where(("alerts",), [])
    ('Threshold 3, percent', 'Recipients', 'Thresholds')
    """
    if loc and loc[0] == "alerts":
        if len(loc) >= 3 and isinstance(loc[1], int) and loc[1] < len(rows):
            return f"Threshold {rows[loc[1]]}, {loc[2]}"
        return "Thresholds"
    if loc and loc[0] == "limit_usd":
        return "Limit"
    return str(loc[0]).replace("_", " ").capitalize() if loc else "Form"


def _problems(exc: ValidationError, rows: list[int] | None = None) -> list[str]:
    return [f"{_where(tuple(e['loc']), rows or [])}: {e['msg']}" for e in exc.errors()]


def limit_request(form) -> tuple[BudgetLimit | None, list[str]]:
    """The limit form's ``BudgetLimit``, or what is wrong with it.

    >>> limit_request({"limit_usd": "1,250.50"})[0].limit_usd
    1250.5
    >>> limit_request({"limit_usd": "lots"})[1]
    ['Limit: enter an amount in dollars, such as 500']
    """
    text = (form.get("limit_usd") or "").replace(",", "").replace("$", "").strip()
    try:
        value = float(text)
    except ValueError:
        return None, ["Limit: enter an amount in dollars, such as 500"]
    try:
        return BudgetLimit.model_validate({"limit_usd": value}), []
    except ValidationError as exc:
        return None, _problems(exc)


def alerts_request(form) -> tuple[BudgetAlerts | None, list[str]]:
    """The alerts form's ``BudgetAlerts``: rows ``percent_<i>`` with their ``channels_<i>``
    (a row without a percent is left out), and the recipients one a line (or comma-separated).

    >>> req, _ = alerts_request({"percent_0": "80", "channels_0": ["email"], "percent_1": "",
    ...                          "recipients": "a@example.com, b@example.com"})
    >>> [a.percent for a in req.alerts], req.recipients
    ([80], ['a@example.com', 'b@example.com'])
    >>> alerts_request({"percent_0": "eighty", "channels_0": ["email"]})[1]
    ['Threshold 1, percent: a whole number from 1 to 100']
    """
    rows, alerts, problems = [], [], []
    for i in range(MAX_THRESHOLDS):
        text = (form.get(f"percent_{i}") or "").strip().rstrip("%").strip()
        if not text:
            continue
        channels = form.getlist(f"channels_{i}") if hasattr(form, "getlist") else form.get(f"channels_{i}") or []
        channels = [channels] if isinstance(channels, str) else list(channels)
        if not text.isdigit():
            problems.append(f"Threshold {i + 1}, percent: a whole number from 1 to 100")
            continue
        rows.append(i + 1)
        alerts.append({"percent": int(text), "channels": channels})
    recipients = [r for r in re.split(r"[\s,;]+", form.get("recipients") or "") if r]
    if problems:
        return None, problems
    try:
        return BudgetAlerts.model_validate({"alerts": alerts, "recipients": recipients}), []
    except ValidationError as exc:
        return None, _problems(exc, rows)


# ---------------------------------------------------------------------- the page
def month_from_query():
    """The ``?month=YYYY-MM`` of a page (budget, team), or None for this month; a bad one is
    flashed and this month shown."""
    try:
        query = MonthQuery.model_validate(request.args.to_dict(), strict=False)
    except ValidationError as exc:
        flash(f"Month: {exc.errors()[0]['msg']}; showing this month.", "error")
        return None
    return spending.parse_month(query.month) if query.month else None


def _page(status: int = 200, **forms):
    figures = budgets.for_viewer(budgets.monthly(month_from_query()), g.user)
    settings = budgets.alert_settings()
    rows = settings["alerts"] + [{"percent": "", "channels": []}] * (MAX_THRESHOLDS - len(settings["alerts"]))
    biggest = max((d["spent_usd"] for d in figures["by_day"]), default=0.0)
    waiting = [j for j in approvals.awaiting() if g.user.is_admin or j.created_by == g.user.id]
    return render_template("console/budget/page.html", month=figures, settings=settings, alert_rows=rows,
                           day_max=biggest or 1.0, waiting=waiting, owners=budgets.emails_of(
                               {j.created_by for j in waiting}),
                           threshold=approvals.threshold_usd(), calibration=calibration(), **forms), status


def _admins_only(what: str) -> None:
    if not g.user.is_admin:
        raise Forbidden(f"only admins may {what}")


@bp.get("/budget")
def budget_page():
    return _page()


@bp.get("/budget/export.csv")
def budget_csv():
    """The month's jobs for accounting (admins), as the API's ``monthly.csv``."""
    _admins_only("export every job's spend")
    month, body = budgets.monthly_csv(month_from_query())
    return Response(body, mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="brightrun-spend-{month}.csv"'})


@bp.post("/budget/limit")
def set_budget_limit():
    _admins_only("set the monthly budget")
    req, problems = limit_request(request.form)
    if req is None:
        return _page(400, limit_problems=problems, limit_typed=request.form.get("limit_usd", ""))
    budgets.set_limit(g.user, req.limit_usd)
    flash(f"The monthly budget is now ${req.limit_usd:,.2f}.", "ok")
    return redirect(url_for("console.budget_page"))


@bp.post("/budget/alerts")
def set_budget_alerts():
    _admins_only("set the budget's alerts")
    req, problems = alerts_request(request.form)
    if req is None:
        typed = [{"percent": request.form.get(f"percent_{i}", ""), "channels": request.form.getlist(f"channels_{i}")}
                 for i in range(MAX_THRESHOLDS)]
        return _page(400, alert_problems=problems, alerts_typed=typed,
                     recipients_typed=request.form.get("recipients", ""))
    budgets.set_alerts(g.user, [a.model_dump() for a in req.alerts], req.recipients)
    flash(f"Alerts saved: {', '.join(f'{a.percent}%' for a in req.alerts)}; each alerts once a month.", "ok")
    return redirect(url_for("console.budget_page"))


@bp.post("/budget/approval")
def decide_approval():
    """Approve or decline a waiting job (admins); a decline needs a reason. Answers on the
    budget page, or on the job's page when the form says ``return_to=job``."""
    _admins_only("approve or decline a job awaiting approval")
    job = visible_job(g.user, (request.form.get("job_id") or "").strip())
    back = (url_for("console.job_detail", job_id=job.id) if request.form.get("return_to") == "job"
            else url_for("console.budget_page"))
    try:
        req = ApprovalRequest.model_validate({"decision": request.form.get("decision"),
                                              "reason": request.form.get("reason") or None})
    except ValidationError as exc:
        return _page(400, approval_problems={job.id: _problems(exc)})
    try:
        if req.decision == "approve":
            approvals.approve(job, g.user, req.reason)
            flash(f"“{job.name}” is approved and queued for a GPU.", "ok")
        else:
            approvals.decline(job, g.user, req.reason)
            flash(f"“{job.name}” is declined and cancelled; its owner is told why.", "ok")
    except JobStateError:
        flash(f"“{job.name}” is no longer awaiting approval (it is {job.status.replace('_', ' ')}): "
              "another admin may have decided first.", "error")
    return redirect(back)
