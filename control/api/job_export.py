"""The jobs list as a CSV download: ``GET /api/training/jobs?format=csv`` (the route is
``training_jobs.list_jobs``; the rows are ``control/services/job_export.py``'s)."""
from __future__ import annotations

from flask import Response

from control.api.documentation import Media, Reply
from control.models import User
from control.models.types import utcnow
from control.responses import JobListPage
from control.schemas import JobListQuery
from control.services import job_export

#: The list's 200: a page as JSON, or with ``format=csv`` every matching job as CSV.
LIST_REPLY = Reply(Media({"application/json": JobListPage, "text/csv": None}),
                   headers={"X-Total-Count": "jobs matching the filters"},
                   description="JSON: a page of jobs. format=csv: every matching job as a text/csv attachment "
                               "(Content-Disposition), at most X-Export-Limit rows; X-Export-Rows says how many "
                               "it holds and X-Export-Truncated is true when the limit cut the list")


def csv_reply(user: User, query: JobListQuery) -> Response:
    result = job_export.export(user, query)
    return Response(result.text, mimetype="text/csv", headers=job_export.headers(result, utcnow()))
