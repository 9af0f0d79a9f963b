"""The jobs list's Export CSV button: ``/jobs.csv`` with the list's own filters and sort,
the same file as the API's ``GET /api/training/jobs?format=csv``."""
from __future__ import annotations

from flask import Response, flash, g, redirect, request, url_for

from control.console.blueprint import bp
from control.console.job_list import list_query
from control.models.types import utcnow
from control.services import job_export


@bp.get("/jobs.csv")
def jobs_csv():
    """Every job the list shows for these filters, at most ``job_export.MAX_ROWS``; a filter
    the list refuses is refused here too (the export never silently drops one): back to the
    list, which names it."""
    query, _, errors = list_query(request.args, g.user)
    if errors:
        flash("Not exported: " + "; ".join(f"{field}: {message}" for field, message in errors.items()), "error")
        return redirect(url_for("console.job_list", **request.args.to_dict(flat=False)))
    result = job_export.export(g.user, query)
    return Response(result.text, mimetype="text/csv", headers=job_export.headers(result, utcnow()))
