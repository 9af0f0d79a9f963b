"""The job page's inline edit of its name, description, notes and tags: the form's values,
and the ``EditJob`` request they make (the schema ``PATCH /api/training/jobs/<id>``
validates with), or every problem keyed by the form field."""
from __future__ import annotations

from pydantic import ValidationError

from control.schemas.templates import EDITABLE_FIELDS, EditJob


def values_of(job) -> dict:
    """The form's values for ``job`` as it is."""
    return {"name": job.name or "", "description": job.description or "", "notes": job.notes or "",
            "tags": ", ".join(job.tags or [])}


def values_from_form(form) -> dict:
    return {k: form.get(k) or "" for k in EDITABLE_FIELDS}


def parse(values: dict) -> tuple[EditJob | None, dict[str, str]]:
    """The edit, or the problems by field. An empty description or notes clears it; tags are
    comma-separated.

    >>> req, errors = parse({"name": " run 2 ", "description": " ", "notes": "why\\r\\nit worked", "tags": "a, b,, c"})
    >>> errors, req.name, req.description, req.notes, req.tags
    ({}, 'run 2', None, 'why\\r\\nit worked', ['a', 'b', 'c'])
    >>> parse({"name": "", "tags": ",".join(str(i) for i in range(21))})[1]
    {'name': 'give the job a name', 'tags': 'List should have at most 20 items after validation, not 21'}
    """
    body = {"name": (values.get("name") or "").strip(),
            "description": values.get("description") if (values.get("description") or "").strip() else None,
            "notes": values.get("notes") if (values.get("notes") or "").strip() else None,
            "tags": [t.strip() for t in (values.get("tags") or "").split(",") if t.strip()]}
    try:
        return EditJob.model_validate(body), {}
    except ValidationError as exc:
        errors: dict[str, str] = {}
        for err in exc.errors():
            field = str(err["loc"][0]) if err.get("loc") else "name"
            errors.setdefault(field, "give the job a name" if field == "name" and not body["name"]
                              else err.get("msg", "invalid"))
        return None, errors
