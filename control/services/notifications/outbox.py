"""The outbox as people see it: admins every message, others their own (the team's
messages, with no user, are the admins'); newest first, filtered by status, a page at a time."""
from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from control.extensions import db
from control.models import OutboxMessage, User


def visible(user: User, status: str | None = None, page: int = 1, per_page: int = 50) -> tuple[list, int]:
    """A page of the messages ``user`` may see, and how many there are in all."""
    where = []
    if not user.is_admin:
        where.append(OutboxMessage.user_id == user.id)
    if status:
        where.append(OutboxMessage.status == status)
    total = db.session.scalar(select(func.count()).select_from(OutboxMessage).where(*where))
    rows = db.session.scalars(select(OutboxMessage).where(*where).options(selectinload(OutboxMessage.notice))
                              .order_by(OutboxMessage.created_at.desc(), OutboxMessage.id.desc())
                              .limit(per_page).offset((page - 1) * per_page)).all()
    return list(rows), int(total or 0)


def counts(user: User) -> dict[str, int]:
    """How many of the messages ``user`` may see are in each state."""
    q = select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
    if not user.is_admin:
        q = q.where(OutboxMessage.user_id == user.id)
    return {status: n for status, n in db.session.execute(q)}
