"""``GET /api/audit``: the audit trail, for admins, newest first, filtered and paged (the
console's audit page shows the same, with a CSV export)."""
from __future__ import annotations

from flask import g, jsonify

from control.api.blueprint import bp
from control.api.documentation import api_doc
from control.api.requests import query_args
from control.responses import AuditPage, ErrorOut
from control.schemas.audit import AuditQuery
from control.services import audit
from control.services.exceptions import Forbidden


@bp.get("/audit")
@api_doc("The audit trail (admins): who created, started, cancelled, retried, deleted, downloaded, reviewed, "
         "approved or rejected, shared, or changed a budget, rubric, template or user, and when; newest first, "
         "filtered by time, actor, action (or family) and job, paged with before", query=AuditQuery,
         description="Entries are append-only, written in the same transaction as the change they record.",
         responses={200: AuditPage, 403: ErrorOut})
def audit_entries():
    if not g.user.is_admin:
        raise Forbidden("only admins may read the audit trail (a job's own page shows its activity)")
    q = query_args(AuditQuery)
    rows, next_before = audit.page(limit=q.limit, since=q.since, until=q.until, actor=q.actor, action=q.action,
                                   job_id=q.job_id, before_id=q.before)
    return jsonify(data=[e.to_dict() for e in rows], next_before=next_before)
