"""Delivering one outbox message, at most once, retried with backoff.

A delivery first claims its row with one conditional ``UPDATE``: only a message still
``pending`` or ``retrying`` whose next try is due is claimed, and the claim pushes its
next try ``LEASE_S`` ahead, so a second task for the same row (a duplicate enqueue, the
sweep's re-enqueue) finds it not due and sends nothing. No transaction is held open while
the provider answers. Then the send: ``sent``; a refusal that retrying cannot mend (a 4xx
other than 429) is ``dead`` with the error; anything else is ``retrying``, its next try
after Slack's ``Retry-After`` or ``NOTIFY_BACKOFF_SECONDS`` doubling each attempt (capped),
as a new task on the notify queue, never a sleep; after ``NOTIFY_MAX_ATTEMPTS`` it is
``dead``. A worker lost mid-send leaves the claim to expire and the sweep enqueues it
again (so only a crash between the provider's answer and the commit can send twice).
Errors are stored and logged with every secret redacted.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import or_, update

from control.extensions import db
from control.models import OutboxMessage, utcnow
from control.services import queue
from control.services.notifications import mail, slack
from control.services.notifications.outcomes import SendFailed, redact
from control.services.notifications.recipients import ready

log = logging.getLogger(__name__)
LEASE_S = queue.TASK_TIMEOUT_S        # a claimed send is the running task's, until the task's own limit
MAX_BACKOFF_S = 15 * 60
MAX_RETRY_AFTER_S = 3600
EARLY_S = 1.0                         # a delayed task may wake this much before its time


def now() -> datetime:
    """The delivery's clock (the tests move it on instead of sleeping)."""
    return utcnow()


def backoff_s(attempts: int, base: float, cap: float = MAX_BACKOFF_S) -> float:
    """The wait before the next try after ``attempts`` failed ones: ``base`` doubling, capped.

    >>> [backoff_s(n, 5) for n in (1, 2, 3, 4)], backoff_s(20, 5)
    ([5.0, 10.0, 20.0, 40.0], 900.0)
    """
    return float(min(cap, base * 2 ** max(0, attempts - 1)))


def secrets_of(cfg) -> list[str]:
    return [cfg.get(k) for k in ("SLACK_WEBHOOK_URL", "SLACK_BOT_TOKEN", "SENDGRID_API_KEY") if cfg.get(k)]


def claim(message_id: int, at: datetime) -> bool:
    """Take the message for one send if it is still to send and due. Commits."""
    claimed = db.session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message_id, OutboxMessage.status.in_(("pending", "retrying")),
               or_(OutboxMessage.next_attempt_at.is_(None),
                   OutboxMessage.next_attempt_at <= at + timedelta(seconds=EARLY_S)))
        .values(attempts=OutboxMessage.attempts + 1, next_attempt_at=at + timedelta(seconds=LEASE_S))
        .execution_options(synchronize_session=False)).rowcount
    db.session.commit()
    return claimed == 1


def send(row: OutboxMessage, cfg) -> None:
    """One try through the message's provider; ``SendFailed`` if it did not go through."""
    timeout = float(cfg["NOTIFY_TIMEOUT_SECONDS"])
    if row.channel == "email":
        mail.send(cfg["SENDGRID_API_KEY"], cfg.get("SENDGRID_API_HOST"), cfg.get("EMAIL_FROM"),
                  row.destination, row.subject, row.body, timeout)
    elif row.destination == slack.TEAM_WEBHOOK:
        slack.send_webhook(cfg["SLACK_WEBHOOK_URL"], row.body, timeout)
    else:
        slack.send_bot(cfg["SLACK_BOT_TOKEN"], cfg.get("SLACK_API_URL"), row.destination, row.body, timeout)


def deliver(message_id: int) -> str:
    """Send one outbox message, once; on a failure, schedule its retry. What happened, in words."""
    cfg = current_app.config
    if not claim(message_id, now()):
        row = db.session.get(OutboxMessage, message_id)
        db.session.rollback()
        return "gone" if row is None else f"{row.status}: not due" if row.status in ("pending", "retrying") \
            else f"{row.status} already"
    row = db.session.get(OutboxMessage, message_id, populate_existing=True)
    if not ready(row.channel, row.destination, cfg):
        return _finish(row, "kept", "no provider is configured for it any more: kept, not sent")
    try:
        send(row, cfg)
    except SendFailed as failure:
        return _failed(row, failure, cfg)
    except Exception as exc:  # noqa: BLE001 - a bug or an odd answer: retried like a network error, never raised
        return _failed(row, SendFailed(f"{type(exc).__name__}: {exc}"), cfg)
    row.sent_at = now()
    return _finish(row, "sent", None)


def _finish(row: OutboxMessage, status: str, error: str | None) -> str:
    row.status, row.next_attempt_at, row.last_error = status, None, error
    db.session.commit()
    return status


def _failed(row: OutboxMessage, failure: SendFailed, cfg) -> str:
    error = redact(failure.message, secrets_of(cfg))
    if failure.final or row.attempts >= int(cfg["NOTIFY_MAX_ATTEMPTS"]):
        log.warning("message %s (%s to %s): dead after %d attempts: %s", row.id, row.channel,
                    redact(row.destination, secrets_of(cfg)), row.attempts, error)
        return _finish(row, "dead", error if failure.final else f"gave up after {row.attempts} attempts: {error}")
    delay = (min(float(failure.retry_after), MAX_RETRY_AFTER_S) if failure.retry_after is not None
             else backoff_s(row.attempts, float(cfg["NOTIFY_BACKOFF_SECONDS"])))
    row.status, row.last_error = "retrying", error
    row.next_attempt_at = now() + timedelta(seconds=delay)
    db.session.commit()
    log.info("message %s: attempt %d failed (%s); next try in %.0f s", row.id, row.attempts, error, delay)
    try:
        queue.enqueue_notify(queue.DELIVER_MESSAGE, row.id, delay=delay)
    except Exception as exc:  # noqa: BLE001 - Redis down: the sweep enqueues it again
        log.warning("message %s: retry not enqueued (%s); the sweep will", row.id, exc)
    return f"retrying in {delay:.0f} s"
