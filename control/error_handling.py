"""Errors app-wide: under ``/api`` JSON (``{"error": {"code", "message", "field"}}``),
everywhere else the console's HTML page that says what to do next; never a traceback.
The blueprints' own handlers (``control/api/__init__.py``, ``control/console/errors.py``)
turn the services' errors into 404 and 409 first."""
from __future__ import annotations

from flask import request
from werkzeug.exceptions import HTTPException

from control.api.errors import ApiError, error_response
from control.console.errors import error_page


def _is_api() -> bool:
    return request.path == "/api" or request.path.startswith("/api/")


def register(app) -> None:
    """JSON errors under ``/api``; everywhere else the console's HTML error page."""
    @app.errorhandler(ApiError)
    def on_api_error(exc: ApiError):
        return error_response(exc.status, exc.code, exc.message, exc.field, exc.details)

    @app.errorhandler(HTTPException)
    def on_http_error(exc: HTTPException):
        if not _is_api():
            return error_page(exc)
        code = {413: "payload_too_large", 404: "not_found", 405: "method_not_allowed"}.get(
            exc.code, (exc.name or "error").lower().replace(" ", "_"))
        message = exc.description or exc.name
        if exc.code == 413:
            message = (f"request body too large: the limit is "
                       f"{app.config['MAX_CONTENT_LENGTH'] // (1024 * 1024)} MiB")
        return error_response(exc.code or 500, code, message)

    @app.errorhandler(Exception)
    def on_unexpected(exc: Exception):
        app.logger.exception("unhandled error")
        if not _is_api():
            return error_page(None)
        return error_response(500, "internal", "internal error; it has been logged")
