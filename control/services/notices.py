"""Notices: what happened that someone should hear of, written with the change it reports.

``emit`` adds a ``Notice`` inside the caller's transaction (an ``INSERT … ON CONFLICT DO
NOTHING`` on its ``dedupe_key``, so "once a month" or "once a job" holds under any race),
and once that transaction commits, enqueues its fan-out. ``fan_out`` turns one notice into
its messages (``notifications``: one per recipient and channel, through the outbox) and its
outgoing webhook deliveries (``webhooks``), once; each is then delivered by its own task on
the notify queue, never on the queue that runs jobs. The sweep enqueues again whatever a
lost task left (``pending_work``).
"""
from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import event, select
from sqlalchemy.orm import Session

from control.extensions import db
from control.models import NOTICE_KINDS, Notice, OutboxMessage, TrainingJob, WebhookDelivery, utcnow
from control.services import notifications, queue, webhooks
from control.services.upsert import insert_for_dialect

log = logging.getLogger(__name__)
_PENDING = "brightrun.notices"


def emit(kind: str, *, job: TrainingJob | None = None, user_id: str | None = None,
         payload: dict | None = None, dedupe_key: str | None = None) -> int | None:
    """Record a notice in the current transaction; its id, or None when ``dedupe_key`` was
    taken already. Its fan-out is enqueued after the commit. The caller commits."""
    if kind not in NOTICE_KINDS:
        raise ValueError(f"unknown notice kind {kind!r}")
    values = {"kind": kind, "training_job_id": job.id if job is not None else None,
              "user_id": user_id or (job.created_by if job is not None else None),
              "dedupe_key": dedupe_key, "payload": payload or {}, "created_at": utcnow()}
    stmt = insert_for_dialect(Notice).values(**values).returning(Notice.id)
    if dedupe_key is not None:
        stmt = stmt.on_conflict_do_nothing(index_elements=["dedupe_key"])
    notice_id = db.session.execute(stmt).scalar()
    if notice_id is not None:
        db.session.info.setdefault(_PENDING, []).append(notice_id)
    return notice_id


def job_snapshot(job: TrainingJob) -> dict:
    """What a job notice carries of the job as it was when it happened."""
    error = ({"type": job.error_type, "message": job.error_message, "cause": job.error_cause,
              "fix": job.error_fix} if job.error_type else None)
    return {"job_id": job.id, "name": job.name, "status": str(job.status),
            "actual_cost_usd": round(job.actual_cost or 0.0, 4), "cost_estimate_usd": job.cost_estimate,
            "interruptions": job.checkpoint_recovery_count, "error": error}


ONCE_A_JOB = ("job.completed", "job.failed", "job.cancelled", "evaluation.ready")


def job_event(kind: str, job: TrainingJob, dedupe_key: str | None = None, **extra) -> int | None:
    """A notice about ``job`` with its snapshot (and ``extra``). A job completes, fails or is
    cancelled once: those kinds are keyed by the job unless ``dedupe_key`` says otherwise.
    The caller commits."""
    if dedupe_key is None and kind in ONCE_A_JOB:
        dedupe_key = f"{kind}:{job.id}"
    return emit(kind, job=job, payload={**job_snapshot(job), **extra}, dedupe_key=dedupe_key)


@event.listens_for(Session, "after_commit")
def _enqueue_fan_outs(session) -> None:
    ids = session.info.pop(_PENDING, None)
    for notice_id in ids or ():
        try:
            queue.enqueue_notify(queue.FAN_OUT, notice_id)
        except Exception as exc:  # noqa: BLE001 - Redis down: the sweep finds it, nothing is lost
            log.warning("notice %s: fan-out not enqueued (%s); the sweep will", notice_id, exc)


@event.listens_for(Session, "after_soft_rollback")
def _forget(session, previous_transaction) -> None:
    session.info.pop(_PENDING, None)


def fan_out(notice_id: int) -> str:
    """Make the notice's messages and webhook deliveries, once, and enqueue each. Commits."""
    notice = db.session.get(Notice, notice_id, with_for_update=True, populate_existing=True)
    if notice is None:
        db.session.rollback()
        return "gone"
    if notice.fanned_out_at is not None:
        db.session.rollback()
        return "done already"
    messages = notifications.messages_for(notice)
    deliveries = webhooks.deliveries_for(notice)
    db.session.add_all([*messages, *deliveries])
    notice.fanned_out_at = utcnow()
    db.session.commit()
    for m in messages:
        if m.status == "pending":               # kept (no provider) and dead rows are only shown
            queue.enqueue_notify(queue.DELIVER_MESSAGE, m.id)
    for d in deliveries:
        queue.enqueue_notify(queue.DELIVER_WEBHOOK, d.id)
    return f"{len(messages)} messages, {len(deliveries)} webhooks"


def pending_work(now=None, quiet_s: float = 60.0) -> dict:
    """What the sweep enqueues again: notices not fanned out, and messages and deliveries
    whose retry is past due by more than ``quiet_s`` (their task was lost)."""
    now = now or utcnow()
    before = now - timedelta(seconds=quiet_s)
    notices = db.session.scalars(select(Notice.id).where(Notice.fanned_out_at.is_(None),
                                                         Notice.created_at < before)).all()
    messages = db.session.scalars(select(OutboxMessage.id).where(
        OutboxMessage.status.in_(("pending", "retrying")),
        db.or_(OutboxMessage.next_attempt_at.is_(None), OutboxMessage.next_attempt_at < before),
        OutboxMessage.created_at < before)).all()
    deliveries = db.session.scalars(select(WebhookDelivery.id).where(
        WebhookDelivery.status.in_(("pending", "retrying")),
        db.or_(WebhookDelivery.next_attempt_at.is_(None), WebhookDelivery.next_attempt_at < before),
        WebhookDelivery.created_at < before)).all()
    for n in notices:
        queue.enqueue_notify(queue.FAN_OUT, n)
    for m in messages:
        queue.enqueue_notify(queue.DELIVER_MESSAGE, m)
    for d in deliveries:
        queue.enqueue_notify(queue.DELIVER_WEBHOOK, d)
    return {"notices": len(notices), "messages": len(messages), "webhooks": len(deliveries)}
