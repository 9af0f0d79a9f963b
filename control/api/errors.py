"""JSON errors: ``{"error": {"code", "message", "field"}}`` with the right status, never a traceback."""
from __future__ import annotations

from flask import jsonify
from pydantic import ValidationError

from shared.errors import PipelineError, ProblemsError


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, field: str | None = None,
                 details: list | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.field, self.details = status, code, message, field, details


def error_response(status: int, code: str, message: str, field: str | None = None,
                   details: list | None = None):
    body = {"code": code, "message": message, "field": field}
    if details:
        body["details"] = details
    return jsonify(error=body), status


def not_found(what: str, ident: str) -> ApiError:
    return ApiError(404, "not_found", f"no {what} {ident!r}")


def from_validation(exc: ValidationError, prefix: str = "") -> ApiError:
    """The first problem of a request body, with every problem under ``details``."""
    details = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err.get("loc", ()) if p != "__root__")
        field = f"{prefix}{field}" if field else prefix.rstrip(".") or None
        msg = "unknown field" if err.get("type") == "extra_forbidden" else err.get("msg", "invalid")
        details.append({"field": field, "message": msg})
    first = details[0]
    return ApiError(400, "invalid_request", f"{first['field'] or 'body'}: {first['message']}",
                    first["field"], details)


def from_pipeline(exc: PipelineError, status: int = 400, code: str | None = None) -> ApiError:
    """A domain error (bad dataset, bad settings) as a 4xx naming every problem's place."""
    code = code or exc.error_type.value
    if isinstance(exc, ProblemsError) and exc.problems:
        details = [p.to_dict() for p in exc.problems]
        first = exc.problems[0]
        field = first.field if first.field else None
        return ApiError(status, code, f"{exc.total} problem{'s' if exc.total != 1 else ''}: {first}",
                        field, details)
    return ApiError(status, code, exc.message)
