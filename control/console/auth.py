"""Sign in and out. Every other console view needs a signed-in user (``g.user``, with its
server-side session ``g.console_session``). The rules are services: the sign-in check and
its throttle (``services/accounts.py``, ``services/sign_in_throttle.py``), the sessions
(``services/sessions.py``); the cookie carries only the session's random token."""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import flash, g, redirect, render_template, request, session, url_for

from control.console.blueprint import bp
from control.console.filters import seconds
from control.services import accounts, sessions

PUBLIC_VIEWS = {"console.login", "console.static", "console.set_password"}   # the last: its token is the proof
SESSION_KEY = "sid"                    # the cookie's only credential: the session's token


def client_address() -> str:
    """The address a request came from (behind proxies: set ``TRUSTED_PROXY_COUNT``)."""
    return request.remote_addr or "-"


def current_session():
    return sessions.find(session.get(SESSION_KEY))


@bp.before_request
def require_login():
    if request.endpoint in PUBLIC_VIEWS:
        return None
    g.console_session = current_session()
    g.user = g.console_session.user if g.console_session is not None else None
    if g.user is None:
        session.pop(SESSION_KEY, None)
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


REFUSALS = {
    "wrong": (401, "Wrong email or password. Ask an admin to run "
                   "`pipeline users set-password EMAIL` if you have none yet."),
    "deactivated": (403, "This account is deactivated. Ask an admin to run "
                         "`pipeline users reactivate EMAIL` if it should not be."),
    "throttled_email": (429, "Too many failed sign-ins for {email} from your address. Wait {wait} and "
                             "try again, or ask an admin to set a new password "
                             "(`pipeline users set-password EMAIL`), which lifts the wait."),
    "throttled_address": (429, "Too many failed sign-ins from your address, for several accounts. "
                               "Wait {wait} and try again."),
}


@bp.route("/login", methods=["GET", "POST"])
def login():
    if request.method == "GET":
        if current_session() is not None:
            return redirect(safe_next(request.args.get("next")))
        return render_template("console/login.html", next=request.args.get("next", ""))
    email = (request.form.get("email") or "").strip().lower()
    password = request.form.get("password") or ""
    try:
        user = accounts.check_sign_in(email, password, client_address())
    except accounts.SignInRefused as refused:
        status, text = REFUSALS[refused.reason]
        wait_s = max(1, refused.retry_after_s)
        headers = {"Retry-After": str(wait_s)} if status == 429 else {}
        return render_template("console/login.html", next=request.form.get("next", ""), email=email,
                               error=text.format(email=email, wait=seconds(wait_s))), status, headers
    token = sessions.start(user, client_address(), request.user_agent.string)
    session.clear()                      # a fresh session: no fixation
    session.permanent = True
    session[SESSION_KEY] = token
    return redirect(safe_next(request.form.get("next")))


@bp.post("/logout")
def logout():
    sessions.end(session.get(SESSION_KEY))
    session.clear()
    flash("You are signed out.", "info")
    return redirect(url_for("console.login"))


@bp.get("/")
def home():
    return redirect(url_for("console.job_list"))
