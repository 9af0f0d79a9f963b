"""Errors app-wide: under ``/api`` JSON (``{"error": {"code", "message", "field"}}``),
everywhere else the console's HTML page that says what to do next; never a traceback.
The blueprints' own handlers (``control/api/__init__.py``, ``control/console/errors.py``)
turn the services' errors into 404 and 409 first. A 413 names its limit in bytes
(``control/request_limits.py``). A path segment, query parameter or form field holding a
control character (NUL, which Postgres refuses in text, among them; a form's text may hold
newlines and tabs) is a 400 naming it, before any view reads it."""
from __future__ import annotations

from flask import request
from werkzeug.exceptions import BadRequest, HTTPException, RequestEntityTooLarge

from control.api.errors import ApiError, error_response
from control.console.errors import error_page
from control.request_limits import PayloadTooLarge, too_large_message
from control.schemas import control_character, control_character_message


def _is_api() -> bool:
    return request.path == "/api" or request.path.startswith("/api/")


def _refuse_control_characters():
    """No id in a path, no query parameter and no field of a (url-encoded) form holds a
    control character, in its name or its value; a form's values may hold newlines and tabs
    (a textarea's), which the request schemas refuse where a field is one line."""
    checks = [(name, v, "") for name, v in (request.view_args or {}).items() if isinstance(v, str)]
    checks += [(name, v, "") for name, v in request.args.items(multi=True)]
    checks += [(name, name, "") for name in request.args]
    if request.mimetype == "application/x-www-form-urlencoded":
        checks += [(name, v, "\n\r\t") for name, v in request.form.items(multi=True)]
        checks += [(name, name, "") for name in request.form]
    for name, value, allowed in checks:
        i = control_character(value, allowed)
        if i is not None:
            shown = name if control_character(name) is None else repr(name)
            message = f"{shown}: {control_character_message(value, i, bool(allowed))}"
            if _is_api():
                raise ApiError(400, "invalid_request", message, shown)
            raise BadRequest(message)


def _keep_headers(exc: HTTPException, answer: tuple):
    """The exception's own headers on the JSON or HTML answer: a 405's ``Allow`` above all."""
    body, status = answer
    return body, status, [(k, v) for k, v in exc.get_headers() if k.lower() != "content-type"]


def register(app) -> None:
    """JSON errors under ``/api``; everywhere else the console's HTML error page."""
    app.before_request(_refuse_control_characters)

    @app.errorhandler(ApiError)
    def on_api_error(exc: ApiError):
        return error_response(exc.status, exc.code, exc.message, exc.field, exc.details)

    @app.errorhandler(HTTPException)
    def on_http_error(exc: HTTPException):
        if exc.code == 413 and not isinstance(exc, PayloadTooLarge):    # werkzeug's own
            exc = RequestEntityTooLarge(too_large_message(app.config, request.content_length))
        if not _is_api():
            return _keep_headers(exc, error_page(exc))
        code = {413: "payload_too_large", 404: "not_found", 405: "method_not_allowed"}.get(
            exc.code, (exc.name or "error").lower().replace(" ", "_"))
        return _keep_headers(exc, error_response(exc.code or 500, code, exc.description or exc.name,
                                                 getattr(exc, "field", None)))

    @app.errorhandler(Exception)
    def on_unexpected(exc: Exception):
        app.logger.exception("unhandled error")
        if not _is_api():
            return error_page(None)
        return error_response(500, "internal", "internal error; it has been logged")
