"""The audit trail in the console: the admins' page (``/audit``: filters by time, actor and
action family, paged newest first, and its CSV export) and the words every entry is shown
in (``describe``), which a job page's Activity uses too. The rules and the reading are
``services/audit.py``'s; the filters are ``AuditQuery``'s, as ``GET /api/audit``'s."""
from __future__ import annotations

from datetime import date, timedelta

from flask import Response, g, render_template, request
from pydantic import ValidationError

from control.console.blueprint import bp
from control.models import AuditEntry
from control.schemas.audit import ACTION_FAMILIES, AuditQuery
from control.services import audit, user_admin
from control.services.formatting import money

PAGE_SIZE = 50
FAMILY_NAMES = {"job.": "Jobs", "review.": "Blind reviews", "delivery.": "Delivery decisions",
                "share.": "Share links", "budget.": "Budget", "rubric.": "Rubrics", "template.": "Templates",
                "user.": "Users"}
DOWNLOADS = {"adapter": "the adapter", "deployment_package": "the deployment package", "metrics": "the metrics",
             "validation_report": "the validation report", "evaluation_summary": "the evaluation summary"}
SUITES = {"ei": "emotional intelligence", "brand_voice": "brand voice"}


# ---------------------------------------------------------------------- in words
def _job_words(action: str, d: dict) -> str | None:
    if action == "job.created":
        return f"created the job “{d.get('name', '')}”" + (f" ({d['preset']})" if d.get("preset") else "")
    if action == "job.started":
        text = "started it"
        if d.get("awaiting_approval"):
            text += "; it waits for an admin's approval"
        if d.get("budget_override"):
            text += f"; over the budget: “{d['budget_override']}”"
        return text
    if action == "job.cancelled":
        return f"cancelled it (it was {str(d.get('status', '')).replace('_', ' ')})" if d.get("status") \
            else "cancelled it"
    if action == "job.retried":
        return f"retried it as {d.get('new_job_id', 'a new job')}"
    if action == "job.deleted":
        return f"deleted the job “{d.get('name', '')}”"
    if action == "job.downloaded":
        return "downloaded " + DOWNLOADS.get(d.get("kind"), str(d.get("kind") or "a file"))
    if action == "job.approval_decided":
        verb = "approved its spend" if d.get("decision") == "approved" else "declined it"
        return verb + (f": “{d['reason']}”" if d.get("reason") else "")
    if action == "job.edited":
        fields = d.get("fields") or sorted((d.get("changes") or {}).keys())
        return "edited " + (", ".join(fields) if fields else "it")
    return None


def _other_words(action: str, d: dict) -> str | None:
    if action == "review.submitted":
        return f"scored {SUITES.get(d.get('suite'), 'an')} item {d.get('item_id', '')} blind" \
               + (" (again)" if d.get("replaced") else "")
    if action in ("delivery.approved", "delivery.rejected"):
        return f"{action.split('.')[1]} it for delivery" + (f": “{d['reason']}”" if d.get("reason") else "")
    if action == "share.created":
        return f"made a share link ({d['days']} days)" if d.get("days") else "made a share link"
    if action == "share.revoked":
        return "revoked a share link"
    if action == "budget.changed":
        change = d.get("limit_usd") or {}
        return f"set the monthly budget from {money(change.get('from'))} to {money(change.get('to'))}"
    if action == "budget.alerts_changed":
        return "set the budget's alerts to " + ", ".join(f"{a.get('percent')}%" for a in d.get("alerts") or [])
    if action.startswith(("rubric.", "template.")):
        kind, verb = action.split(".")
        what = f"{verb} the {kind}" + (f" “{d['name']}”" if d.get("name") else "")
        return what + (f" ({', '.join(d['fields'])})" if d.get("fields") else "")
    if action == "user.created":
        return f"created the user {d.get('email')} ({d.get('role')})"
    if action == "user.role_changed":
        return f"changed {d.get('email')}'s role from {d.get('from')} to {d.get('to')}"
    if action in ("user.deactivated", "user.reactivated"):
        return f"{action.split('.')[1]} {d.get('email')}"
    if action == "user.password_link_created":
        return f"made a set-password link for {d.get('email')}"
    if action == "user.password_set":
        return "set their password with a one-time link"
    return None


def describe(entry: AuditEntry) -> str:
    """What the entry says happened, in words ("downloaded the adapter"); the action's
    name for one without words here."""
    d = entry.details or {}
    return _job_words(entry.action, d) or _other_words(entry.action, d) or entry.action


def row(entry: AuditEntry) -> dict:
    """An entry as the pages show it: who, what (in words), when."""
    return {"id": entry.id, "at": entry.at, "who": entry.actor_email or "the system", "action": entry.action,
            "what": describe(entry), "target": f"{entry.target_type.replace('_', ' ')} {entry.target_id or ''}".strip(),
            "job_id": entry.training_job_id, "address": entry.client_address}


def activity(job_id: str, limit: int = 200) -> list[dict]:
    """A job's Activity: its entries as ``row``\\ s, newest first."""
    return [row(e) for e in audit.for_job(job_id, limit)]


# ---------------------------------------------------------------------- the page
def _query(args) -> tuple[AuditQuery | None, dict, dict]:
    """The page's filters (``from``/``to`` are dates, ``to`` inclusive) as an ``AuditQuery``,
    what was typed, and what is wrong, by field."""
    shown = {k: (args.get(k) or "").strip() for k in ("from", "to", "actor", "action", "job_id", "before")}
    raw = {"since": shown["from"] or None, "actor": shown["actor"] or None, "action": shown["action"] or None,
           "job_id": shown["job_id"] or None, "before": shown["before"] or None}
    errors = {}
    if shown["to"]:
        try:
            raw["until"] = (date.fromisoformat(shown["to"]) + timedelta(days=1)).isoformat()
        except ValueError:
            errors["To"] = f"{shown['to']!r} is not a date (YYYY-MM-DD)"
    if errors:
        return None, shown, errors
    try:
        return AuditQuery.model_validate({k: v for k, v in raw.items() if v is not None}, strict=False), shown, {}
    except ValidationError as exc:
        names = {"since": "From", "until": "To", "actor": "Who", "action": "Action", "job_id": "Job",
                 "before": "Page"}
        return None, shown, {names.get(str(e["loc"][0]), str(e["loc"][0])) if e["loc"] else "Filters": e["msg"]
                             for e in exc.errors()}


def _filters(q: AuditQuery) -> dict:
    return {"since": q.since, "until": q.until, "actor": q.actor, "action": q.action, "job_id": q.job_id}


@bp.get("/audit")
def audit_page():
    """The trail, newest first, ``PAGE_SIZE`` a page (admins)."""
    user_admin.require_admin(g.user, "read the audit trail (a job's own page shows its activity)")
    q, shown, errors = _query(request.args)
    rows, next_before = ([], None) if q is None else audit.page(limit=PAGE_SIZE, before_id=q.before, **_filters(q))
    export_args = {k: v for k, v in shown.items() if v and k != "before"}
    return render_template("console/audit/page.html", rows=[row(e) for e in rows], next_before=next_before,
                           shown=shown, errors=errors, families=[(f, FAMILY_NAMES.get(f, f)) for f in ACTION_FAMILIES],
                           people=[r.user.email for r in user_admin.rows()], export_args=export_args,
                           export_limit=audit.MAX_EXPORT, paged=bool(shown["before"])), 400 if errors else 200


@bp.get("/audit/export.csv")
def audit_csv():
    """Every entry the filters match, newest first, at most ``audit.MAX_EXPORT`` (admins)."""
    user_admin.require_admin(g.user, "export the audit trail")
    q, shown, errors = _query(request.args)
    if q is None:
        return Response("; ".join(f"{k}: {v}" for k, v in errors.items()) + "\n", status=400, mimetype="text/plain")
    rows = audit.entries(limit=audit.MAX_EXPORT, **_filters(q))
    return Response(audit.csv_text(rows), mimetype="text/csv",
                    headers={"Content-Disposition": 'attachment; filename="brightrun-audit.csv"',
                             "X-Export-Rows": str(len(rows))})
