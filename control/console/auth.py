"""Sign in and out. Every other console view needs a signed-in user (``g.user``)."""
from __future__ import annotations

import hashlib
import hmac
import logging
from urllib.parse import urlsplit

from flask import current_app, flash, g, redirect, render_template, request, session, url_for
from redis.exceptions import RedisError
from sqlalchemy import select
from werkzeug.security import check_password_hash, generate_password_hash

from control.console.blueprint import bp
from control.extensions import db
from control.models import User
from control.services.queue import redis_connection

log = logging.getLogger(__name__)
PUBLIC_VIEWS = {"console.login", "console.static"}
MAX_FAILED_SIGN_INS = 10          # per email, within the window: then it waits
FAILED_SIGN_IN_WINDOW_S = 15 * 60
# Compared against when the email is unknown, so a wrong email costs as long as a wrong password.
_DUMMY_HASH = generate_password_hash("not-a-password")


def _fingerprint(user: User) -> str:
    """Changes when the password does: changing it signs out every other session."""
    return (user.password_hash or "")[-16:]


def current_user() -> User | None:
    uid = session.get("uid")
    if not uid:
        return None
    user = db.session.get(User, uid)
    if user is None or not user.password_hash or not hmac.compare_digest(
            session.get("pw", ""), _fingerprint(user)):
        return None
    return user


@bp.before_request
def require_login():
    if request.endpoint in PUBLIC_VIEWS:
        return None
    g.user = current_user()
    if g.user is None:
        session.pop("uid", None)
        if request.method == "GET" and not request.path.endswith(".json"):
            return redirect(url_for("console.login", next=request.full_path.rstrip("?")))
        return redirect(url_for("console.login"))
    return None


def safe_next(target: str | None) -> str:
    """Only a path on this site: never another host (no open redirect).

    >>> safe_next("/jobs/tj_1?x=1"), safe_next("//evil.example/x"), safe_next("https://evil.example")
    ('/jobs/tj_1?x=1', '/jobs', '/jobs')
    """
    if not target:
        return "/jobs"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") \
            or "\\" in target:
        return "/jobs"
    return target


def _failures_key(email: str) -> str:
    digest = hashlib.sha256(email.encode()).hexdigest()[:32]
    return f"{current_app.config['QUEUE_NAME']}:sign-in-failures:{digest}"


def _failures(email: str, add: bool = False) -> int:
    """Failed sign-ins for ``email`` in the window, counted in Redis (shared by every server
    process); 0 if Redis cannot be reached, so an outage never locks people out."""
    try:
        conn, key = redis_connection(), _failures_key(email)
        if not add:
            return int(conn.get(key) or 0)
        with conn.pipeline() as pipe:
            pipe.incr(key)
            pipe.expire(key, FAILED_SIGN_IN_WINDOW_S)
            return int(pipe.execute()[0])
    except RedisError as exc:
        log.warning("sign-in throttle unavailable: %s", exc)
        return 0


def _forget_failures(email: str) -> None:
    try:
        redis_connection().delete(_failures_key(email))
    except RedisError:
        pass


@bp.route("/login", methods=["GET", "POST"])
def login():
    if request.method == "GET":
        if current_user() is not None:
            return redirect(safe_next(request.args.get("next")))
        return render_template("console/login.html", next=request.args.get("next", ""))
    email = (request.form.get("email") or "").strip().lower()
    password = request.form.get("password") or ""
    if email and _failures(email) >= MAX_FAILED_SIGN_INS:
        return render_template("console/login.html", next=request.form.get("next", ""), email=email,
                               error=f"Too many failed sign-ins for {email}. Wait "
                                     f"{FAILED_SIGN_IN_WINDOW_S // 60} minutes, or ask an admin to "
                                     "set a new password."), 429
    user = db.session.scalar(select(User).where(db.func.lower(User.email) == email)) if email else None
    if user is None or not user.password_hash:
        check_password_hash(_DUMMY_HASH, password)
        ok = False
    else:
        ok = user.check_password(password)
    if not ok:
        if email:
            _failures(email, add=True)
        return render_template("console/login.html", next=request.form.get("next", ""), email=email,
                               error="Wrong email or password. Ask an admin to run "
                                     "`pipeline users set-password EMAIL` if you have none yet."), 401
    _forget_failures(email)
    session.clear()                      # a fresh session: no fixation
    session.permanent = True
    session["uid"], session["pw"] = user.id, _fingerprint(user)
    return redirect(safe_next(request.form.get("next")))


@bp.post("/logout")
def logout():
    session.clear()
    flash("You are signed out.", "info")
    return redirect(url_for("console.login"))


@bp.get("/")
def home():
    return redirect(url_for("console.job_list"))
