"""Reading the body of ``PATCH /api/training/jobs/<id>``: the name, description, notes and
tags only. Any other field (a setting, the status, the cost) is refused with a 400 that
names it and lists the four that may change; a bad value of one of the four is refused as
any body's (``json_body``)."""
from __future__ import annotations

from control.api.errors import ApiError
from control.api.requests import json_body
from control.schemas.templates import EDITABLE_FIELDS, EditJob

ALLOWED = ", ".join(EDITABLE_FIELDS[:-1]) + " and " + EDITABLE_FIELDS[-1]


def edit_request():
    """The request's ``EditJob``; a field outside the four: ``not_editable``, naming it."""
    try:
        return json_body(EditJob)
    except ApiError as exc:
        refused = [d["field"] for d in exc.details or []
                   if d.get("field") and d["field"].split(".")[0] not in EDITABLE_FIELDS]
        if not refused:
            raise
        raise ApiError(400, "not_editable", f"{refused[0]}: cannot be changed after the job is created; "
                       f"a job's {ALLOWED} can", refused[0],
                       [{"field": f, "message": f"not editable: only {ALLOWED} can change"} for f in refused]) from None
