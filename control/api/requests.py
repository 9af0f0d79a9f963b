"""Reading a request: its JSON body or query string, validated by one of the request
schemas (``control/schemas.py``); anything else is a clear 4xx naming what is wrong."""
from __future__ import annotations

from flask import current_app, request
from pydantic import BaseModel, ValidationError

from control.api.errors import ApiError, from_validation


def json_body(schema: type[BaseModel]):
    """The request's JSON body validated by ``schema``; a clear 4xx otherwise."""
    if request.content_length and request.content_length > current_app.config["MAX_JSON_BYTES"]:
        raise ApiError(413, "payload_too_large",
                       f"JSON body too large: the limit is {current_app.config['MAX_JSON_BYTES']} bytes")
    if not request.is_json:
        raise ApiError(415, "unsupported_media_type", "send the body as JSON with "
                       "'Content-Type: application/json'")
    raw = request.get_data(cache=False)
    if len(raw) > current_app.config["MAX_JSON_BYTES"]:
        raise ApiError(413, "payload_too_large", "JSON body too large")
    try:
        return schema.model_validate_json(raw or b"null")
    except ValidationError as exc:
        if any(e.get("type") == "json_invalid" for e in exc.errors()):
            err = next(e for e in exc.errors() if e.get("type") == "json_invalid")
            raise ApiError(400, "malformed_json", f"request body is not valid JSON: {err.get('msg')}") from None
        if any(e.get("type") == "model_type" and not e.get("loc") for e in exc.errors()):
            raise ApiError(400, "invalid_request", "request body must be a JSON object") from None
        raise from_validation(exc) from None


def query_args(schema: type[BaseModel]):
    args = {k: v for k, v in request.args.items()}
    try:
        return schema.model_validate(args, strict=False)
    except ValidationError as exc:
        raise from_validation(exc) from None
