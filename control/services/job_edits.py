"""Changing a job after creation: its name, description, notes and tags only (``EditJob``;
its settings are what it trained with and stay). Each change is on the audit trail
(``job.edited``) with the fields it changed: the old and new value of a short one (name,
tags), the lengths of a long one (description, notes)."""
from __future__ import annotations

from control.extensions import db
from control.models import TrainingJob, User
from control.schemas.templates import EDITABLE_FIELDS
from control.services import audit

SHORT_FIELDS = ("name", "tags")


def change_of(field: str, old, new) -> dict:
    """What the audit trail keeps of one change.

    >>> change_of("name", "run 1", "run 1 (best)"), change_of("notes", "why", None)
    ({'from': 'run 1', 'to': 'run 1 (best)'}, {'from_chars': 3, 'to_chars': 0})
    """
    if field in SHORT_FIELDS:
        return {"from": old, "to": new}
    return {"from_chars": len(old or ""), "to_chars": len(new or "")}


def edit(user: User, job: TrainingJob, req) -> list[str]:
    """Set the fields ``req`` (an ``EditJob``) gives on ``job`` (the caller checked the user
    may see it); returns those that changed. Nothing changed: nothing is written. Commits."""
    given = req.model_dump(include=req.model_fields_set)
    changes = {}
    for field in EDITABLE_FIELDS:
        if field not in given:
            continue
        old = list(job.tags or []) if field == "tags" else getattr(job, field)
        if given[field] != old:
            changes[field] = change_of(field, old, given[field])
            setattr(job, field, given[field])
    if changes:
        audit.record("job.edited", actor=user, target_type="job", target_id=job.id, job_id=job.id,
                     details={"fields": list(changes), "changes": changes})
        db.session.commit()
    return list(changes)
