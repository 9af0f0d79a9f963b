"""The audit trail: ``record`` adds an entry to the session of the change it records, so the
two commit together or not at all (a refused or failed request leaves no entry). Reading it:
``entries`` (filters, newest first) for the audit page, its CSV (``csv_text``) and
``GET /api/audit``; ``for_job`` for a job page's Activity.

An ``actor`` filter is an email (the entries keep it, should the user go), a user id, or
``system`` (the entries no person made); an ``action`` filter a whole name
(``job.started``) or a family (``job.``; ``control.schemas.audit.ACTION_FAMILIES``)."""
from __future__ import annotations

import csv
import io
import json
from datetime import datetime

from flask import has_request_context, request
from sqlalchemy import func, select

from control.extensions import db
from control.models import AUDIT_ACTIONS, AuditEntry, User, iso
from control.services.formatting import spreadsheet_cell

SYSTEM = "system"
MAX_EXPORT = 10_000         # rows of one CSV export
CSV_FIELDS = ("id", "at", "actor", "action", "target_type", "target_id", "job_id", "details", "client_address")


def record(action: str, *, actor: User | None, target_type: str, target_id: str | None,
           job_id: str | None = None, details: dict | None = None) -> AuditEntry:
    """Add one entry for ``action`` by ``actor`` (None: the system) to the current session;
    the caller's commit writes it. Raises ``ValueError`` for an action not in ``AUDIT_ACTIONS``."""
    if action not in AUDIT_ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    entry = AuditEntry(action=action, actor_id=actor.id if actor else None,
                       actor_email=actor.email if actor else None, target_type=target_type,
                       target_id=target_id, training_job_id=job_id, details=details or {},
                       client_address=((request.remote_addr or "")[:64] or None) if has_request_context() else None)
    db.session.add(entry)
    return entry


def entries(*, since: datetime | None = None, until: datetime | None = None, actor_id: str | None = None,
            action: str | None = None, job_id: str | None = None, limit: int = 100,
            before_id: int | None = None, actor: str | None = None) -> list[AuditEntry]:
    """Entries newest first, filtered; ``action`` matches a whole name ("job.started") or a
    family ("job."); ``actor`` an email, a user id or ``system`` (see the module);
    ``before_id`` pages on."""
    stmt = select(AuditEntry)
    if since is not None:
        stmt = stmt.where(AuditEntry.at >= since)
    if until is not None:
        stmt = stmt.where(AuditEntry.at < until)
    if actor_id:
        stmt = stmt.where(AuditEntry.actor_id == actor_id)
    if actor:
        stmt = stmt.where(_actor_clause(actor))
    if action:
        stmt = stmt.where(AuditEntry.action.startswith(action) if action.endswith(".")
                          else AuditEntry.action == action)
    if job_id:
        stmt = stmt.where(AuditEntry.training_job_id == job_id)
    if before_id is not None:
        stmt = stmt.where(AuditEntry.id < before_id)
    return list(db.session.scalars(stmt.order_by(AuditEntry.id.desc()).limit(limit)))


def _actor_clause(actor: str):
    actor = actor.strip()
    if actor.lower() == SYSTEM:
        return AuditEntry.actor_id.is_(None) & AuditEntry.actor_email.is_(None)
    if "@" in actor:
        return func.lower(AuditEntry.actor_email) == actor.lower()
    return AuditEntry.actor_id == actor


def page(limit: int = 100, **filters) -> tuple[list[AuditEntry], int | None]:
    """A page of ``entries`` and the ``before`` cursor of the next (older) page, or None
    when this one is the last."""
    rows = entries(limit=limit + 1, **filters)
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1].id if more and rows else None)


def for_job(job_id: str, limit: int = 200) -> list[AuditEntry]:
    """A job's entries, newest first (its page's Activity)."""
    return entries(job_id=job_id, limit=limit)


def csv_text(rows: list[AuditEntry]) -> str:
    """The entries as CSV, one a row as given, every text cell guarded against formulas."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(CSV_FIELDS)
    for e in rows:
        details = json_text(e.details)
        writer.writerow([e.id, iso(e.at), spreadsheet_cell(e.actor_email or SYSTEM), e.action, spreadsheet_cell(e.target_type or ""),
                         spreadsheet_cell(e.target_id or ""), spreadsheet_cell(e.training_job_id or ""), spreadsheet_cell(details),
                         spreadsheet_cell(e.client_address or "")])
    return buf.getvalue()


def json_text(details: dict | None) -> str:
    """An entry's details as compact JSON text (the CSV's column).

    >>> json_text({"kind": "adapter"}), json_text(None)
    ('{"kind":"adapter"}', '')
    """
    if not details:
        return ""
    return json.dumps(details, separators=(",", ":"), sort_keys=True, default=str)
