"""User admin (``/users``, admins): every user with role, status, last seen and jobs; create a
user (email and role), which shows their one-time set-password link on this one answer;
a new link for someone (their older ones stop working); change a role; deactivate and
reactivate. The rules are ``services/user_admin.py``'s; a refusal (yourself, the last
admin, a duplicate email) comes back on the page saying why."""
from __future__ import annotations

from flask import flash, g, make_response, redirect, render_template, request, url_for
from pydantic import ValidationError

from control.console.blueprint import bp
from control.models import ROLES
from control.schemas.users import CreateUser
from control.services import password_links, user_admin
from control.services.exceptions import Conflict

ROLE_HELP = {"engineer": "trains and manages their own jobs",
             "reviewer": "an engineer who also scores answers blind and approves deliveries",
             "admin": "everything, and everyone's jobs, the budget, users and the audit trail"}


def _page(status: int = 200, **context):
    response = make_response(render_template(
        "console/users/list.html", rows=user_admin.rows(), roles=ROLES, role_help=ROLE_HELP,
        lifetime_h=int(password_links.LIFETIME.total_seconds() // 3600), form=context.pop("form", {}),
        **context), status)
    response.headers["Cache-Control"] = "no-store"      # the page may show a set-password link
    return response


def _link_shown(user, link, token) -> dict:
    return {"email": user.email, "url": url_for("console.set_password", token=token, _external=True),
            "expires_at": link.expires_at}


def _refused(exc: Conflict, status: int = 409):
    return _page(status, error=exc.message[:1].upper() + exc.message[1:] + ".")


@bp.get("/users")
def user_list():
    user_admin.require_admin(g.user)
    return _page()


@bp.post("/users")
def create_user():
    user_admin.require_admin(g.user, "create users")
    form = {"email": (request.form.get("email") or "").strip(), "role": request.form.get("role") or "engineer"}
    try:
        req = CreateUser.model_validate(form)
    except ValidationError as exc:
        problems = [f"{str(e['loc'][0]).capitalize() if e['loc'] else 'Form'}: {e['msg']}" for e in exc.errors()]
        return _page(400, form=form, error="; ".join(problems) + ".")
    try:
        user, link, token = user_admin.create(g.user, req.email, req.role)
    except Conflict as exc:
        return _refused(exc)
    return _page(201, link=_link_shown(user, link, token), created=True)


@bp.post("/users/<user_id>/password-link")
def new_password_link(user_id):
    user_admin.require_admin(g.user, "make set-password links")
    user = user_admin.get(user_id)
    try:
        link, token = user_admin.new_link(g.user, user)
    except Conflict as exc:
        return _refused(exc)
    return _page(201, link=_link_shown(user, link, token))


@bp.post("/users/<user_id>/role")
def change_role(user_id):
    user_admin.require_admin(g.user, "change roles")
    user = user_admin.get(user_id)
    role = request.form.get("role") or ""
    if role not in ROLES:
        return _page(400, error=f"Role: choose one of {', '.join(ROLES)}.")
    before = user.role
    try:
        user_admin.change_role(g.user, user, role)
    except Conflict as exc:
        return _refused(exc)
    flash(f"{user.email} is now {role} (was {before})." if role != before else f"{user.email} is already {role}.",
          "ok")
    return redirect(url_for("console.user_list"))


@bp.post("/users/<user_id>/deactivate")
def deactivate_user(user_id):
    user_admin.require_admin(g.user, "deactivate users")
    user = user_admin.get(user_id)
    try:
        ended = user_admin.deactivate(g.user, user)
    except Conflict as exc:
        return _refused(exc)
    flash(f"{user.email} is deactivated: {ended} console session{'s' if ended != 1 else ''} ended, and their "
          "API tokens are refused from their next request. Their jobs stay theirs.", "ok")
    return redirect(url_for("console.user_list"))


@bp.post("/users/<user_id>/reactivate")
def reactivate_user(user_id):
    user_admin.require_admin(g.user, "reactivate users")
    user = user_admin.get(user_id)
    user_admin.reactivate(g.user, user)
    flash(f"{user.email} is active again: they sign in afresh; their unrevoked tokens work again.", "ok")
    return redirect(url_for("console.user_list"))
