"""``/api/users``: user admin for admins. List, create (the answer holds a one-time
set-password link, shown once), change a role, deactivate or reactivate, and make a new
link. The rules are ``control/services/user_admin.py``'s: an admin cannot demote or
deactivate themself, and the last active admin stays."""
from __future__ import annotations

from flask import g, jsonify, url_for

from control.api.blueprint import bp
from control.api.documentation import api_doc
from control.api.requests import json_body
from control.models import iso
from control.responses import ErrorOut, PasswordLinkCreated, UserList, UserOut
from control.schemas.users import CreateUser, UpdateUser
from control.services import user_admin
from control.services.exceptions import NotFound


def _out(row: user_admin.UserRow) -> dict:
    u = row.user
    return {"id": u.id, "email": u.email, "role": u.role, "status": row.status, "created_at": iso(u.created_at),
            "deactivated_at": iso(u.deactivated_at), "last_seen_at": iso(row.last_seen_at), "jobs": row.jobs,
            "password_link_expires_at": iso(row.live_link_expires_at)}


def _row_of(user_id: str) -> dict:
    row = next((r for r in user_admin.rows() if r.user.id == user_id), None)
    if row is None:
        raise NotFound("user", user_id)
    return _out(row)


def _link_answer(user, link, token) -> dict:
    return {"user": _row_of(user.id), "expires_at": iso(link.expires_at),
            "set_password_url": url_for("console.set_password", token=token, _external=True)}


@bp.get("/users")
@api_doc("Every user (admins): role, status, last seen, jobs", responses={200: UserList, 403: ErrorOut})
def list_users():
    user_admin.require_admin(g.user, "list users")
    return jsonify(data=[_out(r) for r in user_admin.rows()])


@bp.post("/users")
@api_doc("Create a user (admins) with a role; the answer holds their one-time set-password link (72 h, "
         "works once, shown only here)", body=CreateUser,
         responses={201: PasswordLinkCreated, 403: ErrorOut, 409: ErrorOut})
def create_user():
    user_admin.require_admin(g.user, "create users")
    body = json_body(CreateUser)
    user, link, token = user_admin.create(g.user, body.email, body.role)
    return jsonify(_link_answer(user, link, token)), 201


@bp.patch("/users/<user_id>")
@api_doc("Change a user's role and/or deactivate (active: false) or reactivate them (admins); you cannot "
         "demote or deactivate yourself, nor the last active admin", body=UpdateUser,
         responses={200: UserOut, 403: ErrorOut, 409: ErrorOut})
def update_user(user_id):
    user_admin.require_admin(g.user, "change users")
    body = json_body(UpdateUser)
    user = user_admin.get(user_id)
    if body.active is True:
        user_admin.reactivate(g.user, user)
    if body.role is not None:
        user_admin.change_role(g.user, user, body.role)
    if body.active is False:
        user_admin.deactivate(g.user, user)
    return jsonify(_row_of(user.id))


@bp.post("/users/<user_id>/password-link")
@api_doc("A new one-time set-password link for a user (admins); their older links stop working",
         responses={201: PasswordLinkCreated, 403: ErrorOut, 409: ErrorOut})
def new_password_link(user_id):
    user_admin.require_admin(g.user, "make set-password links")
    user = user_admin.get(user_id)
    link, token = user_admin.new_link(g.user, user)
    return jsonify(_link_answer(user, link, token)), 201
