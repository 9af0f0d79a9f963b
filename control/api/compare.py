"""``/api/training/jobs/compare``: 2 to 4 of your jobs side by side (curves, the figures with
the best of each row marked, the settings that differ), as JSON or as a PDF."""
from __future__ import annotations

from flask import Response, g, jsonify

from control.api.blueprint import bp
from control.api.documentation import Media, Reply, api_doc
from control.api.requests import query_args
from control.models import iso, utcnow
from control.responses import Comparison, ErrorOut
from control.schemas.comparison import ComparePdfQuery, CompareQuery
from control.services import comparison
from control.services.report.comparison_page import render_comparison_pdf

PDF = Reply(Media({"application/pdf": None}), headers={"Content-Disposition": "attachment; a file name"})


def _pdf(ids: list[str]):
    data = comparison.compare(g.user, ids)
    pdf = render_comparison_pdf(data, generated_at=iso(utcnow()), by=g.user.email)
    return Response(pdf, mimetype="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="comparison-{"-".join(ids)}.pdf"'})


@bp.get("/training/jobs/compare")
@api_doc("Compare 2 to 4 of your jobs: loss curves and learning rate, final loss, perplexity gain with its "
         "interval and the other measures, cost, duration, tokens per second, interruptions and the delivery "
         "decision, the best of each row marked, and the settings that differ; format=pdf: the same as a PDF",
         query=CompareQuery, responses={200: Reply(Media({"application/json": Comparison, "application/pdf": None})),
                                        404: ErrorOut})
def compare_jobs():
    query = query_args(CompareQuery)
    if query.format == "pdf":
        return _pdf(query.job_ids)
    return jsonify(comparison.compare(g.user, query.job_ids))


@bp.get("/training/jobs/compare.pdf")
@api_doc("The comparison of 2 to 4 of your jobs as a PDF (A4 landscape: the figures, the curves, the settings "
         "that differ)", query=ComparePdfQuery, responses={200: PDF, 404: ErrorOut})
def compare_jobs_pdf():
    return _pdf(query_args(ComparePdfQuery).job_ids)
