"""Per-view OpenAPI metadata: ``@api_doc(...)`` above each route of the JSON API.

The document (``control/api/openapi.py``) is generated from Flask's ``url_map``: every rule
under ``/api`` is an operation, its path parameters come from the rule's converters, and
this metadata adds the summary, the request schema (body or query, the same pydantic models
that validate requests) and the response schema of each status (``control/responses/``). A
rule whose view has no ``@api_doc`` still appears, marked ``x-undocumented``, and the suite
fails on it (``tests/test_api_document.py``), so a new route cannot go undescribed.

    @bp.get("/training/jobs/<job_id>")
    @api_doc("A job", responses={200: JobDetail})
    def get_job(job_id): ...

Errors every operation may answer are added by the generator: 401 (unless ``public``) and
429 everywhere, 404 where there is a path parameter, 400 where there is a query or a body,
413 and 415 where there is a body; each with the shared ``ErrorOut`` body.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel


@dataclass(frozen=True)
class Media:
    """A response (or request) body in other media types than JSON: ``{media type: schema}``,
    a schema being a pydantic type, or ``None`` for opaque content (a CSV, a ZIP)."""

    types: dict[str, Any]


@dataclass(frozen=True)
class Reply:
    """A response with headers: ``Reply(None, headers={"Location": "the signed link"})``.
    ``required`` headers are always sent."""

    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    description: str | None = None


#: The multipart upload of a dataset.
MULTIPART = "multipart/form-data"


@dataclass(frozen=True)
class Operation:
    summary: str
    responses: dict[int, Any]
    body: type[BaseModel] | Media | None = None
    query: type[BaseModel] | None = None
    path: dict[str, Any] = field(default_factory=dict)   # a path parameter's schema, by name
    public: bool = False
    description: str | None = None
    #: One operation per value of a path parameter: ``("kind", {"adapters": Operation, ...})``.
    variants: tuple[str, dict[str, "Operation"]] | None = None


ATTRIBUTE = "api_doc"


def api_doc(summary: str, *, responses: dict[int, Any] | None = None, body=None, query=None,
            path: dict[str, Any] | None = None, public: bool = False, description: str | None = None,
            variants: tuple[str, dict[str, Operation]] | None = None):
    """Describe a view for the OpenAPI document; the view itself is returned unchanged."""
    op = Operation(summary, responses or {}, body, query, path or {}, public, description, variants)

    def mark(view):
        setattr(view, ATTRIBUTE, op)
        return view
    return mark


def operation_of(view) -> Operation | None:
    return getattr(view, ATTRIBUTE, None)
