"""Reading a request: its JSON body or query string, validated by one of the request
schemas (``control/schemas.py``); anything else is a clear 4xx naming what is wrong.

A JSON body is ``application/json`` in UTF-8 (another type or charset: 415; bytes that are
not UTF-8: 400), at most ``MAX_JSON_BYTES`` (413, naming the limit in bytes), one JSON
document with each key once (a repeated key: 400 naming it; ``NaN`` and ``Infinity`` are not
JSON), then the schema's strict validation. A query names each parameter once."""
from __future__ import annotations

import json

from flask import current_app, request
from pydantic import BaseModel, ValidationError

from control.api.errors import ApiError, from_validation
from control.request_limits import PayloadTooLarge

UTF8 = ("utf-8", "utf8")


class _DuplicateKey(ValueError):
    def __init__(self, key: str):
        super().__init__(key)
        self.key = key


def _unique_keys(pairs: list[tuple[str, object]]) -> dict:
    seen: dict = {}
    for key, value in pairs:
        if key in seen:
            raise _DuplicateKey(key)
        seen[key] = value
    return seen


def _not_json(name: str):
    raise ValueError(f"{name} is not JSON: send a number or null")


def _json_media_type() -> None:
    if request.mimetype != "application/json":
        raise ApiError(415, "unsupported_media_type", "send the body as JSON with "
                       f"'Content-Type: application/json' (got {request.mimetype or 'none'!r})")
    charset = request.mimetype_params.get("charset")
    if charset is not None and charset.strip().lower() not in UTF8:
        raise ApiError(415, "unsupported_media_type",
                       f"JSON bodies are UTF-8: send charset=utf-8 or no charset (got {charset!r})")


def _check_document(raw: bytes) -> None:
    """Refuse what the schema's parser would let through or answer unclearly: bytes that
    are not UTF-8, a key given twice (the last would win silently), ``NaN``, deep nesting."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ApiError(400, "invalid_encoding", f"request body is not valid UTF-8: byte "
                       f"0x{raw[exc.start]:02x} at offset {exc.start}") from None
    try:
        json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_not_json)
    except _DuplicateKey as exc:
        raise ApiError(400, "duplicate_key", f"key {exc.key!r} appears more than once in the "
                       "JSON body: send each key once", exc.key) from None
    except json.JSONDecodeError as exc:
        raise ApiError(400, "malformed_json", f"request body is not valid JSON: {exc.msg} "
                       f"(line {exc.lineno}, column {exc.colno})") from None
    except RecursionError:
        raise ApiError(400, "malformed_json", "request body is nested too deeply") from None
    except ValueError as exc:       # NaN/Infinity, an integer of thousands of digits
        raise ApiError(400, "malformed_json", f"request body is not valid JSON: {exc}") from None


def json_body(schema: type[BaseModel], empty_ok: bool = False):
    """The request's JSON body validated by ``schema``; a clear 4xx otherwise. With
    ``empty_ok``, no body at all is the schema's defaults."""
    limit = current_app.config["MAX_JSON_BYTES"]
    if request.content_length and request.content_length > limit:
        raise PayloadTooLarge("the JSON body", limit)
    if empty_ok and not request.content_length and not request.content_type:
        return schema()
    _json_media_type()
    raw = request.get_data(cache=False)
    if len(raw) > limit:
        raise PayloadTooLarge("the JSON body", limit)
    if raw.strip():
        _check_document(raw)
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
    """The query string validated by ``schema`` (text, so numbers and dates are parsed);
    a parameter given twice is refused rather than one of its values picked."""
    repeated = next((k for k, values in request.args.lists() if len(values) > 1), None)
    if repeated is not None:
        raise ApiError(400, "invalid_request", f"{repeated}: given more than once; give it once",
                       repeated)
    try:
        return schema.model_validate(request.args.to_dict(), strict=False)
    except ValidationError as exc:
        raise from_validation(exc) from None
