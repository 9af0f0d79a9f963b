"""Brand-voice rubrics per client: a named list of characteristics with descriptions.

Admins create them; a job picks one when it is created; a job without one is scored on the
documents' rubric (``shared/suites/brand_voice.json``, id ``default``). A rubric in use is
archived, never deleted, so the jobs scored on it keep what they were scored against.
"""
from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from control.extensions import db
from control.models import Rubric, TrainingJob, User, utcnow
from control.services import audit
from control.services.exceptions import Conflict, Forbidden, NotFound
from shared import suites
from shared.errors import ConfigError, Problem

DEFAULT_ID = "default"
MAX_CHARACTERISTICS = 20


def default_rubric() -> dict:
    rubric = suites.brand_voice()
    return {"id": DEFAULT_ID, "name": "Brand voice (the documents' 10 characteristics)", "client": None,
            "characteristics": [{"id": c.id, "name": c.name, "description": c.description,
                                 "anchors": dict(c.anchors)} for c in rubric.characteristics],
            "created_by": None, "created_at": None, "archived_at": None}


def rubric_of(job: TrainingJob) -> dict:
    """The rubric the job's answers are scored on."""
    if job.rubric_id:
        row = db.session.get(Rubric, job.rubric_id)
        if row is not None:
            return row.to_dict()
    return default_rubric()


def all_rubrics(include_archived: bool = False) -> list[dict]:
    """The default first, then the clients' rubrics by name."""
    stmt = select(Rubric).order_by(Rubric.name)
    if not include_archived:
        stmt = stmt.where(Rubric.archived_at.is_(None))
    return [default_rubric()] + [r.to_dict() for r in db.session.scalars(stmt)]


def get(rubric_id: str) -> dict:
    if rubric_id == DEFAULT_ID:
        return default_rubric()
    row = db.session.get(Rubric, rubric_id)
    if row is None:
        raise NotFound("rubric", rubric_id)
    return row.to_dict()


def _slug(name: str) -> str:
    """A characteristic's id from its name.

    >>> _slug("Non-judgmental tone!")
    'non_judgmental_tone'
    """
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")[:64]


def create(user: User, name: str, characteristics: list[dict], client: str | None = None) -> Rubric:
    """A new rubric (admins only); each characteristic needs a name and a description. Commits."""
    if not user.is_admin:
        raise Forbidden("only an admin can create rubrics")
    problems, seen, items = [], set(), []
    if not characteristics:
        problems.append(Problem("characteristics", "a rubric needs at least one characteristic", "characteristics"))
    if len(characteristics) > MAX_CHARACTERISTICS:
        problems.append(Problem("characteristics", f"at most {MAX_CHARACTERISTICS} characteristics",
                                "characteristics"))
    for i, c in enumerate(characteristics[:MAX_CHARACTERISTICS]):
        cid = c.get("id") or _slug(c["name"])
        if not cid:
            problems.append(Problem(f"characteristic {i + 1}", "its name has no letters or digits",
                                    f"characteristics.{i}.name"))
        elif cid in seen:
            problems.append(Problem(f"characteristic {i + 1}", f"duplicate characteristic {cid!r}",
                                    f"characteristics.{i}.name"))
        seen.add(cid)
        items.append({"id": cid, "name": c["name"], "description": c["description"]})
    if problems:
        raise ConfigError(problems)
    duplicate = Conflict(f"a rubric named {name!r} already exists", code="duplicate")
    if db.session.scalar(select(Rubric).where(Rubric.name == name)) is not None:
        raise duplicate
    row = Rubric(name=name, client=client, characteristics=items, created_by=user.id)
    db.session.add(row)
    try:
        db.session.flush()               # its id, for the trail
        audit.record("rubric.created", actor=user, target_type="rubric", target_id=row.id,
                     details={"name": name, "client": client, "characteristics": len(items)})
        db.session.commit()
    except IntegrityError:                 # the same name made at the same moment
        db.session.rollback()
        raise duplicate from None
    return row


def archive(user: User, rubric_id: str) -> Rubric:
    """Hide a rubric from new jobs (admins only); jobs that use it keep it. Commits."""
    if not user.is_admin:
        raise Forbidden("only an admin can archive rubrics")
    row = db.session.get(Rubric, rubric_id)
    if row is None:
        raise NotFound("rubric", rubric_id)
    if row.archived_at is None:
        audit.record("rubric.archived", actor=user, target_type="rubric", target_id=row.id,
                     details={"name": row.name})
    row.archived_at = row.archived_at or utcnow()
    db.session.commit()
    return row


def pickable(rubric_id: str | None, archived_too: bool = False) -> str | None:
    """The id to store on a new job: None for the default; an unknown or archived rubric is
    a 400 naming the field (``archived_too``: a retry keeps its job's rubric)."""
    if rubric_id in (None, DEFAULT_ID):
        return None
    row = db.session.get(Rubric, rubric_id)
    if row is None or (row.archived_at is not None and not archived_too):
        state = "archived" if row is not None else "unknown"
        raise ConfigError([Problem("rubric_id", f"{state} rubric {rubric_id!r}: pick one from GET /api/rubrics",
                                   "rubric_id")])
    return row.id
