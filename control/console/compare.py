"""Comparing runs in the console (``/jobs/compare?ids=…``), started by ticking 2 to 4 jobs in
the jobs list: every run's curves overlaid (Chart.js, ``static/compare.js``), the figures
side by side with the best of each row marked, the settings that differ, a notice when the
datasets differ, and the same as a PDF (``/jobs/compare.pdf``). The ids come as one comma
list or as repeated ``ids=`` (a form of checkboxes); too few or too many is a 400 page
that says how many to tick. The figures are ``services.comparison``'s."""
from __future__ import annotations

from flask import Response, g, render_template, request
from pydantic import ValidationError

from control.console.blueprint import bp
from control.models import iso, utcnow
from control.schemas.comparison import MAX_RUNS, MIN_RUNS, ComparePdfQuery
from control.services import comparison
from control.services.report.comparison_page import render_comparison_pdf


def requested_ids(args) -> tuple[list[str], str | None]:
    """The ids of the query string (``ids=a,b`` or ``ids=a&ids=b``, or both), or what is wrong.

    >>> from werkzeug.datastructures import MultiDict
    >>> requested_ids(MultiDict([("ids", "tj_a"), ("ids", "tj_b,tj_c")]))
    (['tj_a', 'tj_b', 'tj_c'], None)
    >>> requested_ids(MultiDict([("ids", "tj_a")]))[1]
    'Compare 2 to 4 jobs: got 1 (tj_a).'
    >>> requested_ids(MultiDict())[1]
    'Compare 2 to 4 jobs: got 0.'
    """
    joined = ",".join(args.getlist("ids"))
    try:
        query = ComparePdfQuery.model_validate({"ids": joined}, strict=False)
    except ValidationError as exc:
        message = exc.errors()[0]["msg"]
        return [], message[:1].upper() + message[1:] + "."
    return query.job_ids, None


def _refused(error: str):
    return render_template("console/jobs/compare.html", error=error, low=MIN_RUNS, high=MAX_RUNS), 400


@bp.get("/jobs/compare")
def compare_page():
    ids, error = requested_ids(request.args)
    if error:
        return _refused(error)
    data = comparison.compare(g.user, ids)
    chart_data = {"runs": [{"id": r["id"], "name": r["name"], "curves": {k: r["curves"][k] for k in
                                                                         ("training_loss", "validation_loss",
                                                                          "learning_rate")}}
                           for r in data["runs"]]}
    return render_template("console/jobs/compare.html", error=None, c=data, ids=",".join(ids),
                           chart_data=chart_data, low=MIN_RUNS, high=MAX_RUNS)


@bp.get("/jobs/compare.pdf")
def compare_pdf():
    ids, error = requested_ids(request.args)
    if error:
        return _refused(error)
    pdf = render_comparison_pdf(comparison.compare(g.user, ids), generated_at=iso(utcnow()), by=g.user.email)
    return Response(pdf, mimetype="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="comparison-{"-".join(ids)}.pdf"'})
