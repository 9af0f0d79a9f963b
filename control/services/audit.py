"""The audit trail: ``record`` adds an entry to the session of the change it records, so the
two commit together or not at all (a refused or failed request leaves no entry). Reading it:
``entries`` (filters, newest first) for the audit page, its CSV and ``GET /api/audit``."""
from __future__ import annotations

from datetime import datetime

from flask import has_request_context, request
from sqlalchemy import select

from control.extensions import db
from control.models import AUDIT_ACTIONS, AuditEntry, User


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
            before_id: int | None = None) -> list[AuditEntry]:
    """Entries newest first, filtered; ``action`` matches a whole name ("job.started") or a
    family ("job."); ``before_id`` pages on."""
    stmt = select(AuditEntry)
    if since is not None:
        stmt = stmt.where(AuditEntry.at >= since)
    if until is not None:
        stmt = stmt.where(AuditEntry.at < until)
    if actor_id:
        stmt = stmt.where(AuditEntry.actor_id == actor_id)
    if action:
        stmt = stmt.where(AuditEntry.action.startswith(action) if action.endswith(".")
                          else AuditEntry.action == action)
    if job_id:
        stmt = stmt.where(AuditEntry.training_job_id == job_id)
    if before_id is not None:
        stmt = stmt.where(AuditEntry.id < before_id)
    return list(db.session.scalars(stmt.order_by(AuditEntry.id.desc()).limit(limit)))
