"""``/api/me/notifications`` (your preferences: which events, on which channels, the daily
digest) and ``/api/notifications/outbox`` (the messages made for you, or, for admins, for
everyone, with each one's delivery state)."""
from __future__ import annotations

from flask import g, jsonify

from control.api.blueprint import bp
from control.api.documentation import api_doc
from control.api.requests import json_body, query_args
from control.models import CHANNELS, USER_EVENTS
from control.responses.common import ErrorOut
from control.responses.notifications import NotificationSettingsOut, OutboxPage
from control.schemas.notifications import NotificationSettings, OutboxQuery
from control.services.notifications import outbox, preferences


def settings_of(user) -> dict:
    return preferences.of(user.id).to_dict()


@bp.get("/me/notifications")
@api_doc("Your notification preferences (the defaults until you set them: the main job events by email, "
         "no digest)", responses={200: NotificationSettingsOut})
def get_notification_settings():
    return jsonify(settings_of(g.user))


@bp.put("/me/notifications")
@api_doc("Change your notification preferences: events (" + ", ".join(USER_EVENTS) + "), channels ("
         + ", ".join(CHANNELS) + "), slack_channel, digest; fields left out keep their value",
         body=NotificationSettings, responses={200: NotificationSettingsOut, 400: ErrorOut})
def put_notification_settings():
    body = json_body(NotificationSettings)
    given = body.model_fields_set
    changes = {}
    if "events" in given and body.events is not None:
        changes["events"] = preferences.ordered(body.events, USER_EVENTS)
    if "channels" in given and body.channels is not None:
        changes["channels"] = preferences.ordered(body.channels, CHANNELS)
    if "slack_channel" in given:
        changes["slack_channel"] = body.slack_channel
    if "digest" in given and body.digest is not None:
        changes["digest"] = body.digest
    return jsonify(preferences.update(g.user, **changes).to_dict())


@bp.get("/notifications/outbox")
@api_doc("The outbox, newest first: each message's channel, destination, subject and delivery state "
         "(yours; admins see every message, the team's Slack included)", query=OutboxQuery,
         responses={200: OutboxPage})
def list_outbox():
    q = query_args(OutboxQuery)
    rows, total = outbox.visible(g.user, q.status, q.page, q.per_page)
    return jsonify(data=[r.to_dict() for r in rows], page=q.page, per_page=q.per_page, total=total)
