"""Notifications: a notice's messages, one per recipient and channel (Slack, email), kept in
the outbox and delivered at most once each, retried with backoff.

The two entry points: ``messages_for(notice)`` (``notices.fan_out`` adds and commits the
rows, then enqueues a ``deliver_message`` task for each on the notify queue) and
``deliver(message_id)`` (that task). The parts:

- ``recipients``: who hears of a notice, and where (preferences, named recipients, the team's Slack);
- ``facts`` and ``kinds``: what the message says, per notice kind; ``content``: its shape and numbers;
- ``slack`` (Block Kit, the webhook and the bot) and ``mail`` (HTML and text, SendGrid);
- ``delivery``: the claim, the send, the retry; ``outcomes``: failures sorted, secrets redacted;
- ``preferences`` and ``outbox``: what the API and the console show and change.

Without a provider (no ``SENDGRID_API_KEY``, no Slack settings: the embedded default) the
rows are still made, as ``kept``: the console's outbox shows what would have gone out.
This package never imports ``control.services.notices`` (which imports it).
"""
from __future__ import annotations

from flask import current_app

from control.models import Notice, OutboxMessage, utcnow
from control.services.notifications import delivery, facts, kinds, mail, recipients, slack
from control.services.notifications.content import Message


def render(msg: Message, channel: str) -> dict:
    """The stored body of a message on ``channel``: email ``html`` and ``text``; Slack
    ``blocks`` and the ``text`` its notifications show."""
    if channel == "email":
        return mail.render(msg)
    return {"text": f"{msg.subject}: {msg.headline}", "blocks": slack.blocks(msg)}


def compose(notice: Notice) -> Message:
    """The message of ``notice``, as its facts are now."""
    return kinds.compose(facts.gather(notice, current_app.config["PUBLIC_BASE_URL"]))


def messages_for(notice: Notice) -> list[OutboxMessage]:
    """The outbox rows a notice becomes (not yet added to the session): ``pending`` where a
    provider is configured, ``kept`` where none is, ``dead`` where it cannot be sent (a
    Slack message with no channel to go to)."""
    cfg = current_app.config
    found = recipients.destinations(notice, cfg)
    if not found:
        return []
    msg = compose(notice)
    bodies: dict[str, dict] = {}
    rows = []
    for d in found:
        body = bodies.get(d.channel) or bodies.setdefault(d.channel, render(msg, d.channel))
        status = "dead" if d.problem else "pending" if recipients.ready(d.channel, d.destination, cfg) else "kept"
        rows.append(OutboxMessage(notice_id=notice.id, user_id=d.user_id, channel=d.channel,
                                  destination=d.destination[:320], subject=msg.subject[:300], body=body,
                                  status=status, attempts=0, last_error=d.problem, created_at=utcnow()))
    return rows


def deliver(message_id: int) -> str:
    """Send one outbox message; on a failure, schedule its retry."""
    return delivery.deliver(message_id)
