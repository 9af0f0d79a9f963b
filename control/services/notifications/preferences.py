"""Each user's notification preferences: which events they hear of, on which channels
(email, Slack), the Slack channel the bot posts theirs to, and the daily digest. A user
without a row has the defaults (``DEFAULT_EVENTS`` by email, no digest)."""
from __future__ import annotations

from sqlalchemy import select

from control.extensions import db
from control.models import DEFAULT_EVENTS, NotificationPreference, User, utcnow
from control.services.upsert import insert_for_dialect

UNSET = object()


def defaults(user_id: str) -> NotificationPreference:
    """The preferences of a user who never set any (not added to the session)."""
    return NotificationPreference(user_id=user_id, events=list(DEFAULT_EVENTS), channels=["email"],
                                  slack_channel=None, digest=False, updated_at=None)


def of(user_id: str) -> NotificationPreference:
    """The user's preferences: their row, or the defaults."""
    return db.session.get(NotificationPreference, user_id) or defaults(user_id)


def ordered(values, allowed) -> list[str]:
    """``values`` once each, in the order of ``allowed``.

    >>> ordered(["slack", "email", "slack"], ("email", "slack"))
    ['email', 'slack']
    """
    chosen = set(values)
    return [v for v in allowed if v in chosen]


def update(user: User, *, events=UNSET, channels=UNSET, slack_channel=UNSET, digest=UNSET) -> NotificationPreference:
    """Change what is given, keep the rest; the row is made on the first change. The values
    are already validated (``control.schemas.notifications``). Commits."""
    from_defaults = defaults(user.id)
    stmt = insert_for_dialect(NotificationPreference).values(
        user_id=user.id, events=list(from_defaults.events), channels=list(from_defaults.channels),
        slack_channel=None, digest=False, updated_at=utcnow())
    db.session.execute(stmt.on_conflict_do_nothing(index_elements=["user_id"]))
    row = db.session.scalars(select(NotificationPreference).where(NotificationPreference.user_id == user.id)
                             .with_for_update().execution_options(populate_existing=True)).one()
    if events is not UNSET:
        row.events = list(events)
    if channels is not UNSET:
        row.channels = list(channels)
    if slack_channel is not UNSET:
        row.slack_channel = (slack_channel or "").strip() or None
    if digest is not UNSET:
        row.digest = bool(digest)
    row.updated_at = utcnow()
    db.session.commit()
    return row


def digest_users() -> list[str]:
    """The ids of the active users who want the daily digest."""
    return list(db.session.scalars(
        select(NotificationPreference.user_id).join(User, User.id == NotificationPreference.user_id)
        .where(NotificationPreference.digest.is_(True), User.deactivated_at.is_(None))
        .order_by(NotificationPreference.user_id)))
