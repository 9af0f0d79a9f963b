"""A person's credentials: checking a sign-in (with the throttle), setting a password,
deactivating and reactivating an account. The rules for sessions are ``sessions.py``, for
API tokens ``tokens.py``, for the throttle ``sign_in_throttle.py``."""
from __future__ import annotations

from sqlalchemy import func, select
from werkzeug.security import check_password_hash, generate_password_hash

from control.extensions import db
from control.models import ConsoleSession, User, utcnow
from control.services import sessions, sign_in_throttle
from control.services.exceptions import NotFound

# Compared against when the email is unknown, so a wrong email costs as long as a wrong password.
_DUMMY_HASH = generate_password_hash("not-a-password")


class SignInRefused(Exception):
    """``reason``: ``wrong`` (email or password; never says which), ``deactivated``,
    ``throttled_email`` (this email from this address), ``throttled_address``."""

    def __init__(self, reason: str, retry_after_s: int = 0):
        super().__init__(reason)
        self.reason, self.retry_after_s = reason, retry_after_s


def by_email(email: str) -> User | None:
    email = sign_in_throttle.normalize_email(email)
    return db.session.scalar(select(User).where(func.lower(User.email) == email)) if email else None


def get_by_email(email: str) -> User:
    user = by_email(email)
    if user is None:
        raise NotFound("user", email)
    return user


def check_sign_in(email: str, password: str, address: str | None) -> User:
    """The user these credentials belong to, or ``SignInRefused``. A throttled attempt is
    refused before the password is looked at, so it tells a guesser nothing."""
    email, address = sign_in_throttle.normalize_email(email), address or "-"
    refused = sign_in_throttle.refusal(email, address)
    if refused is not None:
        raise SignInRefused(f"throttled_{refused.reason}", refused.retry_after_s)
    user = by_email(email)
    if user is None or not user.password_hash:
        check_password_hash(_DUMMY_HASH, password)
        ok = False
    else:
        ok = user.check_password(password)
    if not ok:
        sign_in_throttle.record_failure(email, address)
        raise SignInRefused("wrong")
    sign_in_throttle.record_success(email, address)
    if not user.is_active:
        raise SignInRefused("deactivated")
    return user


def set_password(user: User, password: str, keep: ConsoleSession | None = None) -> int:
    """Set ``user``'s password (``ValueError`` when too short), sign out every session but
    ``keep`` (the one changing it, if any), and lift the sign-in throttle on their email.
    Returns how many sessions were ended."""
    user.set_password(password)
    ended = sessions.end_all(user, keep=keep)
    db.session.commit()
    sign_in_throttle.forget_email(user.email)
    return ended


def deactivate(user: User) -> int:
    """No session or token of ``user`` works from now on; returns the sessions ended."""
    if user.deactivated_at is None:
        user.deactivated_at = utcnow()
    ended = sessions.end_all(user)
    db.session.commit()
    return ended


def reactivate(user: User) -> None:
    """Their unrevoked, unexpired tokens work again; they sign in afresh."""
    user.deactivated_at = None
    db.session.commit()


def change_own_password(user: User, current: str, new: str, address: str | None,
                        keep: ConsoleSession | None = None) -> int:
    """The user changing their own password: the current one is checked as a sign-in is
    (throttled alike; ``SignInRefused``), then as ``set_password``. ``ValueError`` when the
    new one is too short."""
    check_sign_in(user.email, current, address)
    return set_password(user, new, keep=keep)
