"""``/download/{adapters,metrics,validation-report,deployment-package}`` and signed links.

The work is in ``control/services/downloads.py``; these routes add the JSON API's shape.
"""
from __future__ import annotations

import os
import tempfile

from flask import Response, current_app, g, jsonify, redirect, request, send_file
from itsdangerous import BadSignature, SignatureExpired

from control.api.blueprint import bp
from control.api.documentation import Media, Operation, Reply, api_doc
from control.api.errors import ApiError
from control.api.form_schemas import AdapterDownloadQuery, MetricsDownloadQuery, ReportDownloadQuery
from control.api.requests import query_args
from control.responses import AdapterLink, ErrorOut, MetricPoint
from control.services import downloads, report_versions
from control.services.access import visible_job
from control.services.storage import get_storage


@bp.get("/training/jobs/<job_id>/download/<kind>")
@api_doc("Download one of a completed job's outputs", variants=("kind", {
    "adapters": Operation("The adapter ZIP: a 302 to its signed link (24 h), or the link as JSON with "
                          "?redirect=false", query=AdapterDownloadQuery,
                          responses={200: AdapterLink, 302: Reply(headers={"Location": "the signed link"}),
                                     409: ErrorOut}),
    "metrics": Operation("Every metric point, as CSV (default) or JSON", query=MetricsDownloadQuery,
                         responses={200: Reply(Media({"text/csv": None, "application/json": list[MetricPoint]}),
                                               headers={"Content-Disposition": "attachment; a file name"})}),
    "validation-report": Operation("The validation report as a PDF: the newest version, or ?version=N; "
                                   "?format=json: the evaluation summary it is built on",
                                   query=ReportDownloadQuery,
                                   responses={200: Reply(Media({"application/pdf": None, "application/json": dict}),
                                                         headers={"Content-Disposition": "attachment; a file name"}),
                                              404: ErrorOut, 409: ErrorOut}),
    "deployment-package": Operation("The deployment package ZIP (adapter, inference.py, requirements.txt, "
                                    "README.md, example_prompts.json): a 302 to its signed link (24 h), or the "
                                    "link as JSON with ?redirect=false", query=AdapterDownloadQuery,
                                    responses={200: AdapterLink, 302: Reply(headers={"Location": "the signed link"}),
                                               409: ErrorOut}),
}))
def download(job_id, kind):
    job = visible_job(g.user, job_id)
    if kind == "adapters":
        return _link_answer(downloads.adapter_link(job, by=g.user))
    if kind == "metrics":
        fmt = request.args.get("format", "csv")
        if fmt not in downloads.METRICS_FORMATS:
            raise ApiError(400, "invalid_request", f"unknown format {fmt!r}: expected csv or json", "format")
        body, mimetype, name = downloads.metrics_export(job, fmt, by=g.user)
        return Response(body, mimetype=mimetype,
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})
    if kind == "validation-report":
        q = query_args(ReportDownloadQuery)
        art = downloads.completed_artifact(job)
        if q.format == "json":
            if not art.summary_path:
                raise ApiError(404, "not_available", f"job {job.id} has no evaluation summary")
            downloads.record_download(job, g.user, "evaluation_summary")
            return Response(get_storage().get_bytes(art.summary_path), mimetype="application/json", headers={
                "Content-Disposition": f'attachment; filename="{job.id}-summary.json"'})
        row, pdf = report_versions.pdf_of(job, q.version)
        downloads.record_download(job, g.user, "validation_report")
        return Response(pdf, mimetype="application/pdf", headers={
            "Content-Disposition": f'attachment; filename="{job.id}-validation-report-v{row.version}.pdf"'})
    if kind == "deployment-package":
        return _link_answer(downloads.package_link(job, by=g.user))
    raise ApiError(404, "not_found", f"unknown download {kind!r}: expected adapters, metrics, "
                   "validation-report or deployment-package")


def _link_answer(link: downloads.SignedLink):
    """A 302 to the signed link, or (``?redirect=false``) the link as JSON."""
    if request.args.get("redirect", "true").lower() in ("0", "false", "no"):
        return jsonify(url=link.url, expires_at=link.expires_at, filename=link.filename)
    return redirect(link.url, 302)


@bp.get("/training/downloads/<token>")
@api_doc("A signed download link (no bearer token: the signature is the proof)", public=True,
         responses={200: Reply(Media({"application/zip": None, "application/octet-stream": None}),
                               headers={"Content-Disposition": "attachment; the file name"}),
                    410: ErrorOut})
def signed_download(token):
    """A link this app signed (local storage); no bearer token: the signature is the proof."""
    try:
        data = downloads.link_serializer().loads(token, max_age=current_app.config["DOWNLOAD_LINK_TTL_S"])
    except SignatureExpired:
        raise ApiError(410, "expired", "this download link has expired; ask for a new one") from None
    except BadSignature:
        raise ApiError(404, "not_found", "invalid download link") from None
    storage = get_storage()
    if not storage.exists(data["key"]):
        raise ApiError(404, "not_found", "the file behind this link no longer exists")
    fd, tmp = tempfile.mkstemp(suffix=".zip")
    os.close(fd)
    storage.get_file(data["key"], tmp)
    response = send_file(tmp, as_attachment=True, download_name=data["name"])
    response.call_on_close(lambda: os.unlink(tmp))
    return response
