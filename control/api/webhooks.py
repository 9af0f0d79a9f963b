"""``/api/webhooks``: the URLs you get signed job events at (Standard Webhooks), and each
one's delivery log. The work is in ``control/services/webhooks.py``."""
from __future__ import annotations

from flask import g, jsonify

from control.api.blueprint import bp
from control.api.documentation import api_doc
from control.api.errors import ApiError
from control.api.requests import json_body, query_args
from control.responses import ErrorOut
from control.responses.webhooks import DeliveryPage, WebhookCreated, WebhookList, WebhookOut
from control.schemas.webhooks import CreateWebhook, DeliveriesQuery
from control.services import webhooks


@bp.post("/webhooks")
@api_doc("Register a URL for job events (job.completed, job.failed, job.cancelled, job.stalled, "
         "evaluation.ready), POSTed signed by the Standard Webhooks specification; the signing secret "
         "is in this answer only", body=CreateWebhook,
         responses={201: WebhookCreated, 400: ErrorOut, 409: ErrorOut})
def create_webhook():
    body = json_body(CreateWebhook)
    try:
        row, secret = webhooks.register(g.user, body.url, body.events, body.description)
    except webhooks.InvalidWebhookUrl as exc:
        raise ApiError(400, "invalid_request", f"url: {exc}", "url") from None
    return jsonify({**row.to_dict(), "secret": secret}), 201


@bp.get("/webhooks")
@api_doc("Your webhook endpoints (never their secrets)", responses={200: WebhookList})
def list_webhooks():
    return jsonify(data=[row.to_dict() for row in webhooks.owned_by(g.user)])


@bp.delete("/webhooks/<webhook_id>")
@api_doc("Delete a webhook endpoint: nothing more is sent there, retries included; its log stays readable",
         responses={200: WebhookOut, 404: ErrorOut})
def delete_webhook(webhook_id):
    return jsonify(webhooks.delete(g.user, webhook_id).to_dict())


@bp.get("/webhooks/<webhook_id>/deliveries")
@api_doc("An endpoint's delivery log, newest first: each event's state, attempts, the last answer "
         "and error; page with before_id", query=DeliveriesQuery, responses={200: DeliveryPage, 404: ErrorOut})
def webhook_deliveries(webhook_id):
    q = query_args(DeliveriesQuery)
    page, next_before = webhooks.delivery_log(g.user, webhook_id, q.before_id, q.limit)
    return jsonify(data=[d.to_dict() for d in page], next_before_id=next_before)
