"""Outgoing webhooks (``/webhooks``): your endpoints, add one (its signing secret is shown
on this one page, never again), delete one, and each one's delivery log
(``/webhooks/deliveries?webhook_id=…``). The rules are ``control/services/webhooks.py``'s."""
from __future__ import annotations

from flask import flash, g, make_response, redirect, render_template, request, url_for
from pydantic import ValidationError

from control.console.blueprint import bp
from control.models import WEBHOOK_EVENTS
from control.schemas.webhooks import CreateWebhook
from control.services import webhooks
from control.services.exceptions import Conflict

LABELS = {"url": "URL", "events": "Events", "description": "Description"}
DELIVERY_TONE = {"delivered": "ok", "pending": "info", "retrying": "warn", "dead": "bad"}


def _page(status: int = 200, **context):
    response = make_response(render_template(
        "console/webhooks/list.html", endpoints=webhooks.owned_by(g.user), all_events=WEBHOOK_EVENTS,
        form=context.pop("form", {"events": list(WEBHOOK_EVENTS)}), errors=context.pop("errors", {}),
        limit=webhooks.MAX_ENDPOINTS_PER_USER, **context), status)
    response.headers["Cache-Control"] = "no-store"      # the page may show a signing secret
    return response


def webhook_request(form: dict) -> tuple[CreateWebhook | None, dict]:
    """The form's ``CreateWebhook``, or each field's problem in words.

    >>> webhook_request({"url": "https://example.com/h", "events": ["job.failed"], "description": ""})[0].events
    ['job.failed']
    >>> webhook_request({"url": "", "events": [], "description": ""})[1]
    {'url': 'URL: give the address to send events to.', 'events': 'Events: choose at least one.'}
    """
    errors = {}
    if not form["url"]:
        errors["url"] = "URL: give the address to send events to."
    if not form["events"]:
        errors["events"] = "Events: choose at least one."
    if errors:
        return None, errors
    try:
        return CreateWebhook.model_validate({"url": form["url"], "events": form["events"],
                                             "description": form["description"] or None}), {}
    except ValidationError as exc:
        for err in exc.errors():
            name = str(err["loc"][0]) if err.get("loc") else "url"
            errors.setdefault(name, f"{LABELS.get(name, name)}: {err['msg']}.")
        return None, errors


@bp.get("/webhooks")
def webhook_list():
    return _page()


@bp.post("/webhooks")
def create_webhook():
    form = {"url": (request.form.get("url") or "").strip(), "events": request.form.getlist("events"),
            "description": (request.form.get("description") or "").strip()}
    body, errors = webhook_request(form)
    if body is None:
        return _page(400, form=form, errors=errors)
    try:
        row, secret = webhooks.register(g.user, body.url, body.events, body.description)
    except webhooks.InvalidWebhookUrl as exc:
        return _page(400, form=form, errors={"url": f"URL: {exc}."})
    except Conflict as exc:
        return _page(409, form=form, errors={"form": exc.message[:1].upper() + exc.message[1:] + "."})
    return _page(201, created=row, secret=secret)


@bp.post("/webhooks/delete")
def delete_webhook():
    row = webhooks.delete(g.user, (request.form.get("webhook_id") or "").strip())
    flash(f"Webhook {row.url} is deleted: nothing more is sent there, retries included.", "ok")
    return redirect(url_for("console.webhook_list"))


@bp.get("/webhooks/deliveries")
def webhook_deliveries():
    endpoint = webhooks.get_own(g.user, (request.args.get("webhook_id") or "").strip(), deleted_ok=True)
    before = request.args.get("before_id") or ""
    before_id = int(before) if before.isascii() and before.isdigit() and len(before) < 16 else None
    page, next_before = webhooks.delivery_log(g.user, endpoint.id, before_id)
    return render_template("console/webhooks/deliveries.html", endpoint=endpoint, deliveries=page,
                           next_before=next_before, tone=DELIVERY_TONE)
