"""API tokens (``/tokens``): your tokens with prefix, name, created, last used and expiry;
create one (its plain text is shown on this one page, never again); revoke one."""
from __future__ import annotations

from datetime import timedelta

from flask import flash, g, make_response, redirect, render_template, request, url_for
from pydantic import ValidationError

from control.console.blueprint import bp
from control.schemas import CreateToken
from control.services import tokens

LIFETIMES = [("", "Never (until revoked)"), ("7", "7 days"), ("30", "30 days"), ("90", "90 days"),
             ("365", "1 year")]


def _page(status: int = 200, **context):
    rows = tokens.owned_by(g.user)
    response = make_response(render_template(
        "console/tokens.html", tokens=rows, status_of=tokens.status, lifetimes=LIFETIMES,
        form=context.pop("form", {}), **context), status)
    response.headers["Cache-Control"] = "no-store"      # the page may show a plain token
    return response


@bp.get("/tokens")
def token_list():
    return _page()


@bp.post("/tokens")
def create_token():
    form = {"name": (request.form.get("name") or "").strip(),
            "expires_in_days": (request.form.get("expires_in_days") or "").strip()}
    days = form["expires_in_days"]
    if days and not (days.isascii() and days.isdigit() and len(days) <= 5):
        return _page(400, form=form, error="Expires: choose how long the token lives from the list.")
    try:
        body = CreateToken.model_validate({"name": form["name"] or None,
                                           "expires_in_days": int(days) if days else None})
    except ValidationError as exc:
        err = exc.errors()[0]
        label = {"name": "Name", "expires_in_days": "Expires"}.get(str(err["loc"][0]), str(err["loc"][0]))
        return _page(400, form=form, error=f"{label}: {err['msg']}. Change it and create the token again.")
    row, plain = tokens.create(g.user, body.name, timedelta(days=body.expires_in_days)
                               if body.expires_in_days else None)
    return _page(201, created=row, plain=plain)


@bp.post("/tokens/revoke")
def revoke_token():
    row = tokens.revoke(request.form.get("token_id") or "", owner=g.user)
    flash(f"Token {row.display_prefix}… ({row.name or 'unnamed'}) is revoked: it is refused from now on.", "ok")
    return redirect(url_for("console.token_list"))
