"""Your account (``/account``): change your password, which signs out every other session
of yours and lifts the sign-in wait on your email; see where you are signed in."""
from __future__ import annotations

from flask import flash, g, redirect, render_template, request, url_for

from control.console.auth import REFUSALS, client_address
from control.console.blueprint import bp
from control.console.filters import seconds
from control.models.user import MIN_PASSWORD_LENGTH
from control.services import accounts, sessions


def _page(status: int = 200, error: str | None = None):
    return render_template("console/account.html", sessions=sessions.live_for(g.user),
                           current=g.console_session, error=error,
                           min_length=MIN_PASSWORD_LENGTH), status


@bp.get("/account")
def account():
    return _page()


@bp.post("/account/password")
def change_password():
    current = request.form.get("current_password") or ""
    new, again = request.form.get("new_password") or "", request.form.get("new_password_again") or ""
    if new != again:
        return _page(400, "The two new passwords differ. Type the same one twice.")
    if len(new) < MIN_PASSWORD_LENGTH:
        return _page(400, f"The new password must have at least {MIN_PASSWORD_LENGTH} characters.")
    try:
        ended = accounts.change_own_password(g.user, current, new, client_address(), keep=g.console_session)
    except accounts.SignInRefused as refused:
        if refused.reason == "wrong":
            return _page(400, "The current password is wrong; nothing was changed.")
        status, text = REFUSALS[refused.reason]
        return _page(status, text.format(email=g.user.email, wait=seconds(max(1, refused.retry_after_s))))
    flash(f"Your password is changed. {ended} other session{'s' if ended != 1 else ''} "
          "signed out.", "ok")
    return redirect(url_for("console.account"))
