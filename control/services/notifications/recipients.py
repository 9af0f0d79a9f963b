"""Who hears of a notice, and where: one ``Destination`` per (channel, address).

- A job notice: its owner, if the kind is among their events, on each of their channels
  (email to their address; Slack, as the bot, to their channel or ``SLACK_CHANNEL``).
- ``budget.threshold`` and ``job.awaiting_approval`` also go to the addresses in the
  payload's ``recipients`` (the budget's recipients, or the admins), whatever their event
  preferences, by email when the payload's ``channels`` (email by default) include it.
- The team's Slack (the incoming webhook ``SLACK_WEBHOOK_URL``, else the bot's
  ``SLACK_CHANNEL``): a job's completion, failure and wait for approval, and a budget
  threshold whose channels include Slack.
- A digest: its user, on their channels (email when they chose none).

Deactivated users hear nothing. ``ready`` says whether the channel's provider is
configured: without one the message is still made, as ``kept``, so the outbox shows what
would have gone out.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from control.extensions import db
from control.models import Notice, NotificationPreference, User
from control.services.notifications import preferences
from control.services.notifications.slack import TEAM_WEBHOOK

TEAM_KINDS = ("job.completed", "job.failed", "job.awaiting_approval")
NAMED_RECIPIENTS = ("budget.threshold", "job.awaiting_approval")
NO_CHANNEL = "(no Slack channel set)"


@dataclass(frozen=True)
class Destination:
    channel: str                 # email | slack
    destination: str             # an address, a Slack channel, or "team-webhook"
    user_id: str | None          # whose (their outbox page shows it); None: the team's
    problem: str | None = None   # why it cannot be sent, known already


def ready(channel: str, destination: str, cfg) -> bool:
    """Whether a provider is configured for this channel and destination.

    >>> ready("email", "a@x", {"SENDGRID_API_KEY": None}), ready("slack", "team-webhook", {"SLACK_WEBHOOK_URL": "u"})
    (False, True)
    """
    if channel == "email":
        return bool(cfg.get("SENDGRID_API_KEY"))
    if destination == TEAM_WEBHOOK:
        return bool(cfg.get("SLACK_WEBHOOK_URL"))
    return bool(cfg.get("SLACK_BOT_TOKEN"))


def team_slack(cfg) -> Destination:
    """The team's Slack: its incoming webhook, else the bot's team channel."""
    if not cfg.get("SLACK_WEBHOOK_URL") and cfg.get("SLACK_BOT_TOKEN") and cfg.get("SLACK_CHANNEL"):
        return Destination("slack", cfg["SLACK_CHANNEL"], None)
    return Destination("slack", TEAM_WEBHOOK, None)


def personal(user: User, prefs: NotificationPreference, cfg, channels=None) -> list[Destination]:
    """A user's own destinations on ``channels`` (default: those of their preferences)."""
    out = []
    for channel in channels or prefs.channels:
        if channel == "email":
            out.append(Destination("email", user.email, user.id))
        elif channel == "slack":
            where = prefs.slack_channel or cfg.get("SLACK_CHANNEL")
            problem = None if where or not cfg.get("SLACK_BOT_TOKEN") else (
                "no Slack channel: set one in your notification preferences (or the team's SLACK_CHANNEL)")
            out.append(Destination("slack", where or NO_CHANNEL, user.id, problem))
    return out


def _active_user(user_id: str | None) -> User | None:
    user = db.session.get(User, user_id) if user_id else None
    return user if user is not None and user.is_active else None


def _named(emails) -> list[tuple[str, str | None]]:
    """Each address with its user's id (None: not a user), deactivated users left out."""
    emails = [str(e).strip() for e in emails or [] if str(e).strip()]
    users = {u.email.lower(): u for u in db.session.scalars(select(User).where(User.email.in_(emails)))} \
        if emails else {}
    out = []
    for email in emails:
        user = users.get(email.lower())
        if user is None or user.is_active:
            out.append((email, user.id if user else None))
    return out


def admin_emails() -> list[str]:
    return list(db.session.scalars(select(User.email).where(User.role == "admin", User.deactivated_at.is_(None))
                                   .order_by(User.email)))


def destinations(notice: Notice, cfg) -> list[Destination]:
    """Every destination of ``notice``, each (channel, address) once, in a stable order."""
    payload = notice.payload or {}
    found: dict[tuple[str, str], Destination] = {}

    def add(d: Destination) -> None:
        found.setdefault((d.channel, d.destination.lower() if d.channel == "email" else d.destination), d)

    user = _active_user(notice.user_id)
    if notice.kind == "digest":
        if user is not None:
            prefs = preferences.of(user.id)
            for d in personal(user, prefs, cfg, list(prefs.channels) or ["email"]):   # their channels
                add(d)
        return list(found.values())
    if user is not None:
        prefs = preferences.of(user.id)
        if notice.kind in prefs.events:
            for d in personal(user, prefs, cfg):
                add(d)
    channels = payload.get("channels") or ["email"]
    if notice.kind in NAMED_RECIPIENTS and "email" in channels:
        for email, user_id in _named(payload.get("recipients") or admin_emails()):
            add(Destination("email", email, user_id))
    if notice.kind in TEAM_KINDS or (notice.kind == "budget.threshold" and "slack" in channels):
        add(team_slack(cfg))
    return list(found.values())
