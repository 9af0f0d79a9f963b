"""What a client receives, in the console: the quality gate and the delivery decision, the
validation report, share links to it, and the deployment package.

- The job page shows it all in its "Delivery" section (``templates/console/_delivery.html``,
  filled by the ``delivery_of`` template global); ``/jobs/<id>/delivery`` is the same section
  on a page of its own, for reviewers who do not own the job and for the answers to its forms.
- ``POST /jobs/<id>/decision`` (reviewers and admins): approve or reject with a reason; a
  refused decision (an approval whose reason does not name a target not met) comes back on
  the delivery page with the message and the reason kept.
- ``POST /jobs/<id>/share`` makes a link (1-90 days) and shows its URL on this one answer;
  ``POST /jobs/<id>/share/revoke`` revokes one (``link_id``).
- ``GET /jobs/<id>/report.pdf`` (``?version=``, else the newest) and
  ``GET /jobs/<id>/download/package`` (a redirect to the package's signed link).

The job's owner and admins see all of it; a reviewer sees the gate and decides on any job.
"""
from __future__ import annotations

from flask import Response, flash, g, make_response, redirect, render_template, request, url_for
from pydantic import ValidationError

from control.console.blueprint import bp
from control.console.job_detail import evaluation_of
from control.models import JobStatus, TrainingJob, User
from control.schemas import DecisionRequest, ShareRequest
from control.services import delivery_decisions, downloads, report_versions, share_links
from control.services.access import visible_job
from control.services.exceptions import Conflict, NotFound
from control.services.reviews import reviewable_job
from shared.errors import ConfigError

DECISION_TEXT = {"approved": "Approved for delivery", "rejected": "Rejected for delivery"}
DECISION_TONE = {"approved": "ok", "rejected": "bad"}
GATE_TONE = {"met": "ok", "not_met": "bad", "waiting_for_review": "warn", "not_measured": "muted"}
GATE_TEXT = {"met": "met", "not_met": "not met", "waiting_for_review": "waiting for review",
             "not_measured": "not measured"}


# ---------------------------------------------------------------------- pure helpers
@bp.app_template_global("gate_badge")
def gate_badge(status: str) -> dict:
    """A gate status's words and tone.

    >>> gate_badge("waiting_for_review"), gate_badge("not_met")["tone"]
    ({'text': 'waiting for review', 'tone': 'warn'}, 'bad')
    """
    return {"text": GATE_TEXT.get(status, status.replace("_", " ")), "tone": GATE_TONE.get(status, "muted")}


@bp.app_template_global("decision_badge")
def decision_badge(decision: str | None) -> dict | None:
    """The badge of a job's delivery status; None before any decision.

    >>> decision_badge("approved"), decision_badge(None)
    ({'text': 'Approved', 'tone': 'ok'}, None)
    """
    if decision not in DECISION_TEXT:
        return None
    return {"text": decision.capitalize(), "tone": DECISION_TONE[decision]}


@bp.app_template_filter("kilobytes")
def kilobytes(size: int | None) -> str:
    """
    >>> kilobytes(183_400), kilobytes(2_500_000), kilobytes(None)
    ('179 KB', '2.4 MB', '—')
    """
    if size is None:
        return "—"
    if size >= 1024 * 1024:
        return f"{size / 1024 / 1024:.1f} MB"
    return f"{max(1, round(size / 1024))} KB"


def decision_request(form) -> tuple[DecisionRequest | None, str | None]:
    """The form's decision, or what is wrong with it in a sentence.

    >>> decision_request({"decision": "approved", "reason": " Every target met. "})[0].reason
    'Every target met.'
    >>> decision_request({"decision": "", "reason": ""})[1]
    'Choose approve or reject, and write the reason.'
    >>> decision_request({"decision": "approved", "reason": "  "})[1]
    'Write the reason for the decision: it is kept with it, and the client may read it.'
    """
    decision, reason = (form.get("decision") or "").strip(), (form.get("reason") or "").strip()
    if decision not in DECISION_TEXT:
        return None, "Choose approve or reject" + (", and write the reason." if not reason else ".")
    if not reason:
        return None, "Write the reason for the decision: it is kept with it, and the client may read it."
    try:
        return DecisionRequest.model_validate({"decision": decision, "reason": reason}), None
    except ValidationError as exc:
        return None, f"Reason: {exc.errors()[0]['msg']}."


def share_days(raw: str | None) -> tuple[int | None, str | None]:
    """The lifetime of a new share link, in days (1-90), or why not.

    >>> share_days("30"), share_days("")
    ((30, None), (30, None))
    >>> share_days("0")[1], share_days("soon")[1]
    ('Lifetime: a link lives from 1 to 90 days, not 0.', "Lifetime: 'soon' is not a number of days (1 to 90).")
    """
    text = (raw or "").strip() or str(share_links.DEFAULT_DAYS)
    if not (text.isascii() and text.isdigit()) or len(text) > 6:
        return None, f"Lifetime: {text!r} is not a number of days (1 to {share_links.MAX_DAYS})."
    try:
        return ShareRequest.model_validate({"expires_in_days": int(text)}).expires_in_days, None
    except ValidationError:
        return None, f"Lifetime: a link lives from 1 to {share_links.MAX_DAYS} days, not {int(text)}."


def report_version(raw: str | None) -> int | None:
    """The report version a download asks for (None: the newest); a 404 names a bad one.

    >>> report_version(None), report_version("2")
    (None, 2)
    """
    if raw is None or raw == "":
        return None
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 9:
        raise NotFound("version of the report", raw)
    return int(raw)


# ---------------------------------------------------------------------- who sees what
@bp.app_template_global("sees_job")
def sees_job(job: TrainingJob, user: User | None = None) -> bool:
    """Whether the user may open the job's own page (its creator, an admin)."""
    user = user or g.user
    return user.is_admin or job.created_by == user.id


def delivery_job(user: User, job_id: str) -> TrainingJob:
    """The job for its delivery section: any job for a reviewer, else the user's own."""
    return reviewable_job(user, job_id) if user.can_review else visible_job(user, job_id)


@bp.app_template_global("delivery_of")
def delivery_of(job: TrainingJob, view: dict | None = None, form: dict | None = None,
                created: dict | None = None) -> dict:
    """What the delivery section shows: the gate, the decisions, the report's versions, the
    share links and what the user may do; ``form`` a refused decision, ``created`` a new link."""
    owner = sees_job(job)
    return {"gate": delivery_decisions.gate_of(job, view, viewer=g.user), "can_decide": g.user.can_review,
            "owner": owner, "completed": job.status == JobStatus.COMPLETED,
            "reports": report_versions.versions(job) if owner else [],
            "links": share_links.links_of(job) if owner else [],
            "form": form or {}, "created": created}


def _delivery_page(job: TrainingJob, status: int = 200, **context):
    """The delivery section on a page of its own, above the measures people scored."""
    view = evaluation_of(job)
    response = make_response(render_template("console/reviews/delivery.html", job=job, view=view,
                                             delivery=delivery_of(job, view, **context)), status)
    response.headers["Cache-Control"] = "no-store"       # it may show a new link's URL
    return response


def _back_to(job: TrainingJob):
    return redirect(url_for("console.job_detail", job_id=job.id, _anchor="delivery") if sees_job(job)
                    else url_for("console.job_delivery", job_id=job.id))


# ---------------------------------------------------------------------- the routes
@bp.get("/jobs/<job_id>/delivery")
def job_delivery(job_id):
    return _delivery_page(delivery_job(g.user, job_id))


@bp.post("/jobs/<job_id>/decision")
def decide_delivery(job_id):
    """Approve or reject; refused, the delivery page again with the message and the reason."""
    job = reviewable_job(g.user, job_id)
    req, problem = decision_request(request.form)
    kept = {"decision": request.form.get("decision") or "", "reason": request.form.get("reason") or ""}
    if req is None:
        return _delivery_page(job, 400, form={**kept, "error": problem})
    try:
        row = delivery_decisions.decide(g.user, job, req.decision, req.reason)
    except ConfigError as exc:
        message = "; ".join(p.message for p in exc.problems)
        return _delivery_page(job, 400, form={**kept, "error": message[:1].upper() + message[1:] + "."})
    flash(f"{DECISION_TEXT[row.decision]}, with your reason; the decision and the measures as they "
          "stand are kept in its history.", "ok")
    return _back_to(job)


@bp.post("/jobs/<job_id>/share")
def create_share_link(job_id):
    """A new share link; its URL is on this one answer and never shown again."""
    job = visible_job(g.user, job_id)
    days, problem = share_days(request.form.get("expires_in_days"))
    if days is None:
        return _delivery_page(job, 400, created={"error": problem})
    try:
        link, url = share_links.create(g.user, job, days)
    except Conflict as exc:
        return _delivery_page(job, 409, created={"error": exc.message[:1].upper() + exc.message[1:] + "."})
    return _delivery_page(job, 201, created={"link": link, "url": url, "days": days})


@bp.post("/jobs/<job_id>/share/revoke")
def revoke_share_link(job_id):
    job = visible_job(g.user, job_id)
    link_id = (request.form.get("link_id") or "").strip()
    if not link_id:
        flash("Not revoked: the form named no link.", "error")
        return _back_to(job)
    revoked = share_links.revoke(job, link_id, by=g.user)
    flash(f"Share link {revoked[0].id} is revoked: it answers “revoked” from now on.", "ok")
    return _back_to(job)


@bp.get("/jobs/<job_id>/report.pdf")
def download_report(job_id):
    """A version of the validation report (the newest without ``?version=``)."""
    job = visible_job(g.user, job_id)
    try:
        row, pdf = report_versions.pdf_of(job, report_version(request.args.get("version")))
    except Conflict as exc:
        flash(exc.message[:1].upper() + exc.message[1:] + ".", "error")
        return _back_to(job)
    downloads.record_download(job, g.user, "validation_report")
    return Response(pdf, mimetype="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="{job.id}-validation-report-v{row.version}.pdf"'})


@bp.get("/jobs/<job_id>/download/package")
def download_package(job_id):
    """The deployment package, through its signed link (like the adapter's)."""
    link = downloads.package_link(visible_job(g.user, job_id), by=g.user)
    return redirect(link.url, 302)
