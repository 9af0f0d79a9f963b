"""``/api/training/budget/...``: the team's monthly budget (everyone sees the figures; admins
set the limit and the alerts), its CSV for accounting, and ``/api/training/jobs/<id>/approval``
(admins approve or decline a job estimated above ``APPROVAL_THRESHOLD_USD``).

The rules are ``control/services/spending.py``'s: a calendar month in UTC, a job's cost
counting in the month it was created."""
from __future__ import annotations

from flask import Response, g, jsonify

from control.api.blueprint import bp
from control.api.documentation import Media, Reply, api_doc
from control.api.requests import json_body, query_args
from control.responses import ErrorOut, JobOut
from control.responses.money import BudgetAlertsOut, BudgetMonth
from control.schemas.money import ApprovalRequest, BudgetAlerts, BudgetLimit, MonthQuery
from control.services import approvals, budgets, spending
from control.services.access import visible_job
from control.services.exceptions import Forbidden

_RULE = ("A job's cost counts in the month it was created (UTC); committed is what the month's queued, "
         "running and awaiting-approval jobs are still expected to cost.")


def _month(query: MonthQuery):
    return spending.parse_month(query.month) if query.month else None


@bp.get("/training/budget/monthly")
@api_doc("The team's budget for a month (?month=YYYY-MM, default this month): limit, spent, committed, "
         "remaining, forecast, and spend by day, user (admins: everyone; others: their own) and tag", query=MonthQuery,
         description=_RULE, responses={200: BudgetMonth})
def budget_monthly():
    return jsonify(budgets.for_viewer(budgets.monthly(_month(query_args(MonthQuery))), g.user))


@bp.put("/training/budget/monthly")
@api_doc("Set the team's monthly limit (admins): {\"limit_usd\": more than 0, at most 1,000,000}",
         body=BudgetLimit, description=_RULE, responses={200: BudgetMonth, 403: ErrorOut})
def set_budget_limit():
    if not g.user.is_admin:
        raise Forbidden("only admins may set the monthly budget")
    budgets.set_limit(g.user, json_body(BudgetLimit).limit_usd)
    return jsonify(budgets.monthly())


@bp.get("/training/budget/monthly.csv")
@api_doc("A month's jobs for accounting (admins; ?month=YYYY-MM): id, name, owner, tags, created, status, estimate "
         "and actual cost, then a total row equal to the month's spent", query=MonthQuery, description=_RULE,
         responses={200: Reply(Media({"text/csv": None}),
                               headers={"Content-Disposition": "attachment; a file name"}), 403: ErrorOut})
def budget_monthly_csv():
    if not g.user.is_admin:
        raise Forbidden("only admins may export every job's spend (the dashboard shows the totals)")
    month, body = budgets.monthly_csv(_month(query_args(MonthQuery)))
    name = f"brightrun-spend-{month}.csv"
    return Response(body, mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


@bp.get("/training/budget/alerts")
@api_doc("The budget's alert thresholds and recipients", responses={200: BudgetAlertsOut})
def budget_alerts():
    return jsonify(budgets.alert_settings())


@bp.post("/training/budget/alerts")
@api_doc("Set the budget's alerts (admins): 1-5 thresholds, each a percent (1-100, once each) with its "
         "channels (email, slack), and up to 20 recipient emails (empty: the active admins). Each "
         "threshold alerts once a month", body=BudgetAlerts, responses={200: BudgetAlertsOut, 403: ErrorOut})
def set_budget_alerts():
    if not g.user.is_admin:
        raise Forbidden("only admins may set the budget's alerts")
    body = json_body(BudgetAlerts)
    row = budgets.set_alerts(g.user, [a.model_dump() for a in body.alerts], body.recipients)
    return jsonify(budgets.alerts_of(row))


@bp.post("/training/jobs/<job_id>/approval")
@api_doc("Approve (the job is queued) or decline (it is cancelled) a job awaiting approval, admins only; "
         "a decline needs a reason", body=ApprovalRequest,
         responses={200: JobOut, 403: ErrorOut, 409: ErrorOut})
def decide_approval(job_id):
    if not g.user.is_admin:
        raise Forbidden("only admins may approve or decline a job awaiting approval")
    job = visible_job(g.user, job_id)
    body = json_body(ApprovalRequest)
    if body.decision == "approve":
        approvals.approve(job, g.user, body.reason)
    else:
        approvals.decline(job, g.user, body.reason)
    return jsonify(job.to_dict())
