"""The public set-password page (``/set-password/<token>``): the one-time link an admin made
on the users page (``users.py``) lets its person choose a password, without signing in (the
link's token is the proof, as the sign-in page needs none). The link works once and
expires; a used, expired or replaced link says which, and what to do. The rules are
``services/password_links.py``'s."""
from __future__ import annotations

from flask import flash, make_response, redirect, render_template, request, url_for
from pydantic import ValidationError

from control.console.blueprint import bp
from control.models.user import MIN_PASSWORD_LENGTH
from control.schemas.users import SetPassword
from control.services import password_links


def _page(token: str, status: int = 200, **context):
    response = make_response(render_template("console/set_password.html", token=token,
                                             min_length=MIN_PASSWORD_LENGTH, **context), status)
    response.headers["Cache-Control"] = "no-store"
    return response


def _refused(token: str, refused: password_links.LinkRefused):
    return _page(token, 410 if refused.reason in ("used", "expired", "revoked") else 404 if
                 refused.reason == "unknown" else 403, refused=refused.message)


@bp.route("/set-password/<token>", methods=["GET", "POST"])
def set_password(token):
    try:
        _, user = password_links.find(token)
    except password_links.LinkRefused as refused:
        return _refused(token, refused)
    if request.method == "GET":
        return _page(token, email=user.email)
    try:
        form = SetPassword.model_validate({"password": request.form.get("password") or "",
                                           "confirm": request.form.get("confirm") or ""})
    except ValidationError as exc:
        return _page(token, 400, email=user.email, error=f"Password: {exc.errors()[0]['msg']}.")
    if form.password != form.confirm:
        return _page(token, 400, email=user.email, error="The two passwords differ: type the same one twice.")
    try:
        password_links.use(token, form.password)
    except password_links.LinkRefused as refused:
        return _refused(token, refused)
    except ValueError as exc:
        return _page(token, 400, email=user.email, error=f"Password: {str(exc)[:1].upper()}{str(exc)[1:]}.")
    flash("Your password is set: sign in with it.", "ok")
    return redirect(url_for("console.login"))
