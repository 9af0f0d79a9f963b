"""Admins manage people: the list (role, status, last seen, jobs), creating a user (with a
one-time set-password link, ``password_links.py``), a new link, a role change, and
deactivating and reactivating. Every change is on the audit trail, in its own transaction.

The rules:

- Only admins (``Forbidden`` otherwise).
- An admin cannot demote or deactivate themself, and the last active admin cannot be
  demoted or deactivated: the team always keeps one.
- A deactivated user's console sessions end now and their API tokens are refused from their
  next request (``accounts.deactivate``; the session and token checks read the account
  fresh); their unused set-password links are revoked. Their jobs stay theirs: nothing is
  reassigned or deleted. Reactivating lets their unrevoked, unexpired tokens work again;
  they sign in afresh.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from control.extensions import db
from control.models import ROLES, ApiToken, ConsoleSession, PasswordLink, TrainingJob, User, utcnow
from control.services import accounts, audit, password_links
from control.services.exceptions import Conflict, Forbidden, NotFound

MAX_USERS_LISTED = 1000


@dataclass(frozen=True)
class UserRow:
    """One line of the users page."""

    user: User
    last_seen_at: datetime | None       # the newest of a console request and an API token's use
    jobs: int
    live_link_expires_at: datetime | None    # a set-password link waiting to be used

    @property
    def status(self) -> str:
        if not self.user.is_active:
            return "deactivated"
        return "active" if self.user.password_hash else "invited"


def require_admin(user: User | None, what: str = "manage users") -> None:
    if user is None or not user.is_admin:
        raise Forbidden(f"only admins may {what}")


def get(user_id: str) -> User:
    user = db.session.get(User, user_id) if isinstance(user_id, str) else None
    if user is None:
        raise NotFound("user", user_id)
    return user


def _newest(*values: datetime | None) -> datetime | None:
    present = [v for v in values if v is not None]
    return max(present) if present else None


def rows(limit: int = MAX_USERS_LISTED) -> list[UserRow]:
    """Every user (active first, then by email) with when they were last seen, their jobs,
    and a waiting set-password link's expiry; four queries whatever the number of users."""
    users = list(db.session.scalars(select(User).order_by(User.deactivated_at.is_not(None), User.email)
                                    .limit(limit)))
    seen = dict(db.session.execute(select(ConsoleSession.user_id, func.max(ConsoleSession.last_seen_at))
                                   .group_by(ConsoleSession.user_id)).all())
    used = dict(db.session.execute(select(ApiToken.user_id, func.max(ApiToken.last_used_at))
                                   .group_by(ApiToken.user_id)).all())
    jobs = dict(db.session.execute(select(TrainingJob.created_by, func.count())
                                   .group_by(TrainingJob.created_by)).all())
    links = dict(db.session.execute(select(PasswordLink.user_id, func.max(PasswordLink.expires_at)).where(
        PasswordLink.used_at.is_(None), PasswordLink.revoked_at.is_(None), PasswordLink.expires_at > utcnow())
        .group_by(PasswordLink.user_id)).all())
    return [UserRow(u, _newest(seen.get(u.id), used.get(u.id)), jobs.get(u.id, 0), links.get(u.id))
            for u in users]


def _active_admins() -> int:
    """How many active admins there are, their rows locked until the commit: two admins
    demoting each other at once are decided one after the other."""
    return len(db.session.scalars(select(User.id).where(User.role == "admin", User.deactivated_at.is_(None))
                                  .with_for_update()).all())


def _keeps_an_admin(admin: User, user: User, what: str) -> None:
    """Refuse ``what`` (demote, deactivate) of ``user`` when it is the admin themself, or the
    last active admin."""
    if user.id == admin.id:
        raise Conflict(f"you cannot {what} yourself: ask another admin", code="own_account")
    if user.is_admin and user.is_active and _active_admins() <= 1:
        raise Conflict(f"cannot {what} {user.email}: they are the last active admin; make another "
                       "admin first", code="last_admin")


def create(admin: User, email: str, role: str) -> tuple[User, PasswordLink, str]:
    """A new user (``email`` already validated) with ``role`` and no password yet, and a
    set-password link for them: the row and its plain token (shown once). Commits."""
    require_admin(admin, "create users")
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}: expected one of {', '.join(ROLES)}")
    email = email.strip().lower()
    if accounts.by_email(email) is not None:
        raise Conflict(f"a user {email} already exists: make them a new set-password link instead",
                       code="duplicate")
    user = User(email=email, role=role)
    db.session.add(user)
    db.session.flush()
    audit.record("user.created", actor=admin, target_type="user", target_id=user.id,
                 details={"email": email, "role": role})
    link, token = password_links.issue(user, admin)
    db.session.commit()
    return user, link, token


def new_link(admin: User, user: User) -> tuple[PasswordLink, str]:
    """A new set-password link for an active user (their older ones are revoked). Commits."""
    require_admin(admin, "make set-password links")
    if not user.is_active:
        raise Conflict(f"{user.email} is deactivated: reactivate them first", code="deactivated")
    link, token = password_links.issue(user, admin)
    db.session.commit()
    return link, token


def change_role(admin: User, user: User, role: str) -> User:
    """Give ``user`` another role (admin, engineer, reviewer). Commits; the same role again
    changes nothing and records nothing."""
    require_admin(admin, "change roles")
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}: expected one of {', '.join(ROLES)}")
    if role == user.role:
        return user
    if user.is_admin:
        _keeps_an_admin(admin, user, "demote")
    audit.record("user.role_changed", actor=admin, target_type="user", target_id=user.id,
                 details={"email": user.email, "from": user.role, "to": role})
    user.role = role
    db.session.commit()
    return user


def deactivate(admin: User, user: User) -> int:
    """Deactivate ``user``: their sessions end, their tokens are refused, their unused
    set-password links are revoked; their jobs stay theirs. Returns the sessions ended.
    Commits (again: no change, no entry)."""
    require_admin(admin, "deactivate users")
    if not user.is_active:
        return 0
    _keeps_an_admin(admin, user, "deactivate")
    now = utcnow()
    for link in password_links.live_links(user):
        link.revoked_at = now
    audit.record("user.deactivated", actor=admin, target_type="user", target_id=user.id,
                 details={"email": user.email, "role": user.role})
    return accounts.deactivate(user)


def reactivate(admin: User, user: User) -> User:
    """Let ``user`` sign in again (their unrevoked, unexpired tokens work again). Commits."""
    require_admin(admin, "reactivate users")
    if user.is_active:
        return user
    audit.record("user.reactivated", actor=admin, target_type="user", target_id=user.id,
                 details={"email": user.email, "role": user.role})
    accounts.reactivate(user)
    return user
