"""What goes to the client: ``.../decisions`` (the quality gate and the approvals and
rejections for delivery) and ``.../share`` (public links to the validation report)."""
from __future__ import annotations

from flask import g, jsonify

from control.api.blueprint import bp
from control.api.documentation import api_doc
from control.api.requests import json_body
from control.responses import DecisionOut, ErrorOut, GateOut, ShareLinkCreated, ShareLinkList
from control.schemas import DecisionRequest, ShareRequest
from control.services import delivery_decisions, share_links
from control.services.access import visible_job
from control.services.reviews import reviewable_job


def _job_for(job_id):
    """Owners and admins see their jobs; reviewers see any job."""
    return reviewable_job(g.user, job_id) if g.user.can_review else visible_job(g.user, job_id)


@bp.get("/training/jobs/<job_id>/decisions")
@api_doc("The quality gate: each measure against its target (met, not_met, waiting_for_review), "
         "and every delivery decision, newest first", responses={200: GateOut, 404: ErrorOut})
def job_gate(job_id):
    return jsonify(delivery_decisions.gate_of(_job_for(job_id), viewer=g.user))


@bp.post("/training/jobs/<job_id>/decisions")
@api_doc("Approve or reject the model for delivery, with a reason (reviewers and admins); approving "
         "with a target not met needs the reason to name it", body=DecisionRequest,
         responses={201: DecisionOut, 400: ErrorOut, 403: ErrorOut, 409: ErrorOut})
def decide(job_id):
    job = reviewable_job(g.user, job_id)
    body = json_body(DecisionRequest)
    return jsonify(delivery_decisions.decide(g.user, job, body.decision, body.reason).to_dict()), 201


@bp.get("/training/jobs/<job_id>/share")
@api_doc("The job's share links with their views and expiry (never the links themselves)",
         responses={200: ShareLinkList, 404: ErrorOut})
def list_share_links(job_id):
    return jsonify(data=[link.to_dict() for link in share_links.links_of(visible_job(g.user, job_id))])


@bp.post("/training/jobs/<job_id>/share")
@api_doc("A public, read-only link to the validation report, valid 30 days (expires_in_days 1-90; send {} "
         "for the default); "
         "the URL is in this answer only", body=ShareRequest,
         responses={201: ShareLinkCreated, 404: ErrorOut, 409: ErrorOut})
def create_share_link(job_id):
    job = visible_job(g.user, job_id)
    body = json_body(ShareRequest)
    link, url = share_links.create(g.user, job, body.expires_in_days)
    response = jsonify({**link.to_dict(), "url": url})
    response.headers["Cache-Control"] = "no-store"
    return response, 201


@bp.delete("/training/jobs/<job_id>/share")
@api_doc("Revoke every active share link of the job: they answer 410 from now on",
         responses={200: ShareLinkList, 404: ErrorOut})
def revoke_share_links(job_id):
    return jsonify(data=[link.to_dict() for link in share_links.revoke(visible_job(g.user, job_id), by=g.user)])


@bp.delete("/training/jobs/<job_id>/share/<link_id>")
@api_doc("Revoke one share link", responses={200: ShareLinkList, 404: ErrorOut})
def revoke_share_link(job_id, link_id):
    return jsonify(data=[link.to_dict() for link in share_links.revoke(visible_job(g.user, job_id), link_id, by=g.user)])
