"""Who may see what: a job or file belongs to its creator; admins see everyone's."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import joinedload

from control.extensions import db
from control.models import TrainingFile, TrainingJob, User
from control.services.exceptions import NotFound


def visible_job(user: User, job_id: str) -> TrainingJob:
    """The job, if ``user`` may see it; another user's job is not found (404), not forbidden."""
    # With its attempts, in the same query: every view of a job shows them.
    job = db.session.get(TrainingJob, job_id, options=[joinedload(TrainingJob.attempts)])
    if job is None or (job.created_by != user.id and not user.is_admin):
        raise NotFound("training job", job_id)
    return job


def visible_file(user: User, file_id: str) -> TrainingFile:
    row = db.session.get(TrainingFile, file_id)
    if row is None or (row.created_by != user.id and not user.is_admin):
        raise NotFound("training file", file_id)
    return row


def visible_files(user: User, limit: int = 500) -> list[TrainingFile]:
    """The training files the user may see (an admin: all), newest first."""
    stmt = select(TrainingFile).order_by(TrainingFile.created_at.desc())
    if not user.is_admin:
        stmt = stmt.where(TrainingFile.created_by == user.id)
    return list(db.session.scalars(stmt.limit(limit)))
