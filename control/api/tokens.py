"""``/api/tokens``: the caller's own API tokens: list, create (the plain token shown once),
revoke. Another user's token is a 404, never a 403."""
from __future__ import annotations

from datetime import timedelta

from flask import g, jsonify

from control.api.auth import presented_token
from control.api.blueprint import bp
from control.api.documentation import api_doc
from control.api.requests import json_body
from control.responses import TokenCreated, TokenList
from control.schemas import CreateToken
from control.services import tokens


def _shown(row) -> dict:
    return {**row.to_dict(), "status": tokens.status(row)}


@bp.get("/tokens")
@api_doc("Your API tokens, newest first: prefix, name, created, last used, expiry, status (never "
         "the token itself)", responses={200: TokenList})
def list_tokens():
    return jsonify(data=[_shown(row) for row in tokens.owned_by(g.user)])


@bp.post("/tokens")
@api_doc("Create an API token with a name and an optional lifetime in days; the plain token is in "
         "this answer only", body=CreateToken, responses={201: TokenCreated})
def create_token():
    body = json_body(CreateToken)
    lifetime = timedelta(days=body.expires_in_days) if body.expires_in_days else None
    caller = presented_token()           # a token made with an expiring token does not outlive it
    row, plain = tokens.create(g.user, body.name, lifetime, not_after=caller.expires_at if caller else None)
    response = jsonify({**_shown(row), "token": plain})
    response.headers["Cache-Control"] = "no-store"
    return response, 201


@bp.delete("/tokens/<token_id>")
@api_doc("Revoke one of your API tokens: it answers 401 from now on (again: no change)",
         responses={204: None})
def revoke_token(token_id):
    tokens.revoke(token_id, owner=g.user)
    return "", 204
