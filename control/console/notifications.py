"""Your notification preferences (``/account/notifications``: which events, on which
channels, your Slack channel, the daily digest) and the outbox (``/outbox``: every message
made, with its delivery state; admins see everyone's and the team's Slack, others their
own). Without SendGrid or Slack configured, messages are ``kept``: the outbox shows what
would have gone out."""
from __future__ import annotations

from math import ceil

from flask import current_app, flash, g, redirect, render_template, request, url_for
from pydantic import ValidationError

from control.console.blueprint import bp
from control.models import CHANNELS, OUTBOX_STATES, USER_EVENTS
from control.schemas.notifications import NotificationSettings
from control.services.notifications import outbox, preferences

EVENT_LABELS = {
    "job.completed": "A job completed", "job.failed": "A job failed", "job.cancelled": "A job was cancelled",
    "job.stalled": "A job stalled (no progress)", "job.recovered": "A job resumed after an interruption",
    "job.awaiting_approval": "A job waits for an admin's approval",
    "job.approval_decided": "An admin approved or declined a job",
    "job.cost_alert": "A job passed 80% or 95% of its estimate",
    "job.over_estimate": "A job is heading over its estimate by more than 20%",
    "evaluation.ready": "An evaluation is ready", "delivery.approved": "A model was approved for delivery",
    "delivery.rejected": "A model was rejected for delivery",
    "budget.threshold": "The team's budget passed a threshold",
}
CHANNEL_LABELS = {"email": "Email", "slack": "Slack"}
STATUS_TONES = {"sent": "ok", "dead": "bad", "retrying": "warn", "pending": "info", "kept": "muted"}
FIELD_LABELS = {"events": "Events", "channels": "Channels", "slack_channel": "Slack channel", "digest": "Digest"}
PER_PAGE = 50


def problems_of(exc: ValidationError) -> list[str]:
    """Each problem of the form, naming its field.

    >>> try:
    ...     NotificationSettings.model_validate({"channels": ["pigeon"]})
    ... except ValidationError as exc:
    ...     print(problems_of(exc)[0])
    Channels: Input should be 'email' or 'slack'
    """
    return [f"{FIELD_LABELS.get(str(e['loc'][0]), str(e['loc'][0])) if e['loc'] else 'Form'}: {e['msg']}"
            for e in exc.errors()]


def _settings_page(status: int = 200, form: dict | None = None, problems: list[str] | None = None):
    prefs = preferences.of(g.user.id)
    shown = form or {"events": list(prefs.events), "channels": list(prefs.channels),
                     "slack_channel": prefs.slack_channel or "", "digest": prefs.digest}
    cfg = current_app.config
    return render_template("console/notifications/preferences.html", form=shown, problems=problems or [],
                           events=[(e, EVENT_LABELS.get(e, e)) for e in USER_EVENTS],
                           channels=[(c, CHANNEL_LABELS[c]) for c in CHANNELS], saved_at=prefs.updated_at,
                           email_ready=bool(cfg.get("SENDGRID_API_KEY")), slack_ready=bool(cfg.get("SLACK_BOT_TOKEN")),
                           team_channel=cfg.get("SLACK_CHANNEL"), digest_hour=cfg["DIGEST_HOUR_UTC"]), status


@bp.get("/account/notifications")
def notification_settings():
    return _settings_page()


@bp.post("/account/notifications")
def save_notification_settings():
    """Save the form; a refusal shows it again with each problem and the choices kept."""
    form = {"events": request.form.getlist("events"), "channels": request.form.getlist("channels"),
            "slack_channel": (request.form.get("slack_channel") or "").strip(),
            "digest": request.form.get("digest") == "on"}
    try:
        body = NotificationSettings.model_validate({**form, "slack_channel": form["slack_channel"] or None})
    except ValidationError as exc:
        return _settings_page(400, form, problems_of(exc))
    channels = preferences.ordered(body.channels, CHANNELS)
    preferences.update(g.user, events=preferences.ordered(body.events, USER_EVENTS), channels=channels,
                       slack_channel=body.slack_channel, digest=body.digest)
    where = " and ".join(CHANNEL_LABELS[c].lower() for c in channels) or "no channel (you hear of nothing)"
    flash(f"Saved: {len(body.events)} kinds of event, by {where}; "
          f"the daily digest is {'on' if body.digest else 'off'}.", "ok")
    return redirect(url_for("console.notification_settings"))


def _page_number(raw) -> int:
    """
    >>> _page_number("3"), _page_number("x"), _page_number("-2"), _page_number(None)
    (3, 1, 1, 1)
    """
    text = str(raw or "")
    return min(int(text), 1_000_000) if text.isascii() and text.isdigit() and int(text) >= 1 else 1


@bp.get("/outbox")
def outbox_list():
    status = request.args.get("status") or None
    if status is not None and status not in OUTBOX_STATES:
        flash(f"Status: there is no {status!r}; showing every message.", "error")
        status = None
    page = _page_number(request.args.get("page"))
    rows, total = outbox.visible(g.user, status, page, PER_PAGE)
    return render_template("console/notifications/outbox.html", rows=rows, total=total, page=page,
                           pages=max(1, ceil(total / PER_PAGE)), status=status, states=OUTBOX_STATES,
                           counts=outbox.counts(g.user), tones=STATUS_TONES, labels=EVENT_LABELS)
