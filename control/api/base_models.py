"""``/api/base-models``: the base models a job may train on (everyone), registering and
withdrawing hub models (admins; the rules are ``control/services/base_models.py``)."""
from __future__ import annotations

from flask import g, jsonify

from control.api.blueprint import bp
from control.api.documentation import api_doc
from control.api.requests import json_body
from control.responses import BaseModelList, BaseModelOut, ErrorOut
from control.schemas import Text, _Strict
from control.services import base_models


class RegisterBaseModel(_Strict):
    """A Hugging Face model id (``ORG/NAME``) every job may then use, with a note for users."""

    name: Text(base_models.MAX_NAME, min_length=1)
    description: Text(2000, multiline=True) | None = None


@bp.get("/base-models")
@api_doc("The base models a job may train on: embedded, the configured ones (BASE_MODELS) and "
         "those admins registered; and the default", responses={200: BaseModelList})
def list_base_models():
    return jsonify(data=base_models.listing(), default=base_models.current_default())


@bp.post("/base-models")
@api_doc("Register a Hugging Face model id (ORG/NAME) for every job (admins only: 403 for others)",
         body=RegisterBaseModel, responses={201: BaseModelOut, 403: ErrorOut, 409: ErrorOut})
def register_base_model():
    req = json_body(RegisterBaseModel)
    row = base_models.register(req.name, req.description, by=g.user)
    return jsonify(base_models.shown(row)), 201


@bp.delete("/base-models/<org>/<name>")
@api_doc("Withdraw a registered base model, ORG/NAME (admins only); jobs that used it keep it",
         responses={204: None, 403: ErrorOut})
def remove_base_model(org, name):
    base_models.remove(f"{org}/{name}", by=g.user)
    return "", 204
