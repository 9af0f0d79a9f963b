"""Share links: a job's validation report, read-only, for people without an account.

A link is valid for 30 days by default (1 to 90), can be revoked at any time, and counts
every opening of its page or its PDF. Its token carries 192 random bits and only its sha256
is stored, so the table cannot hand out working links. A revoked or expired link answers
410 with a plain page that says which.
"""
from __future__ import annotations

from datetime import timedelta

from flask import url_for
from sqlalchemy import func, select, update

from control.extensions import db
from control.models import JobStatus, ShareLink, TrainingJob, User, hash_share_token, utcnow
from control.services import audit
from control.services.exceptions import Conflict, NotFound

DEFAULT_DAYS = 30
MAX_DAYS = 90
MAX_ACTIVE_PER_JOB = 20


class LinkGone(Exception):
    """A share link that was revoked or has expired (HTTP 410)."""

    def __init__(self, link: ShareLink, state: str):
        super().__init__(f"this link was {state}")
        self.link, self.state = link, state


def links_of(job: TrainingJob) -> list[ShareLink]:
    """Every link of the job, newest first."""
    return list(db.session.scalars(select(ShareLink).where(ShareLink.training_job_id == job.id)
                                   .order_by(ShareLink.created_at.desc(), ShareLink.id)))


def url_of(token: str) -> str:
    return url_for("public.shared_report", token=token, _external=True)


def create(user: User, job: TrainingJob, expires_in_days: int = DEFAULT_DAYS) -> tuple[ShareLink, str]:
    """A new link to the job's report; the URL holds the token and is shown once. Commits."""
    if not 1 <= expires_in_days <= MAX_DAYS:
        raise ValueError(f"expires_in_days must be between 1 and {MAX_DAYS}")
    if job.status != JobStatus.COMPLETED:
        raise Conflict(f"job {job.id} is {job.status}: only a completed job has a report to share",
                       code="not_ready")
    now = utcnow()
    active = db.session.scalar(select(func.count()).select_from(ShareLink).where(
        ShareLink.training_job_id == job.id, ShareLink.revoked_at.is_(None), ShareLink.expires_at > now))
    if active >= MAX_ACTIVE_PER_JOB:
        raise Conflict(f"job {job.id} has {active} active share links, the most allowed; revoke one first",
                       code="too_many_links")
    link, token = ShareLink.issue(job.id, user.id, now + timedelta(days=expires_in_days))
    db.session.add(link)
    db.session.flush()                   # its id, for the trail
    audit.record("share.created", actor=user, target_type="share_link", target_id=link.id, job_id=job.id,
                 details={"expires_at": link.expires_at.isoformat(), "days": expires_in_days})
    db.session.commit()
    return link, url_of(token)


def revoke(job: TrainingJob, link_id: str | None = None, by: User | None = None) -> list[ShareLink]:
    """Revoke one link of the job, or (no id) all its active ones; the links revoked (``by``:
    who, for the trail: one entry per link that was live). Commits."""
    now = utcnow()
    if link_id is not None:
        link = db.session.get(ShareLink, link_id)
        if link is None or link.training_job_id != job.id:
            raise NotFound("share link", link_id)
        targets = [link]
    else:
        targets = [link for link in links_of(job) if link.revoked_at is None]
    for link in targets:
        if link.revoked_at is None:
            audit.record("share.revoked", actor=by, target_type="share_link", target_id=link.id, job_id=job.id)
        link.revoked_at = link.revoked_at or now
    db.session.commit()
    return targets


def open_link(token: str) -> tuple[ShareLink, TrainingJob]:
    """The link behind ``token`` and its job, counting the view; ``NotFound`` for no such
    link, ``LinkGone`` for a revoked or expired one. Commits."""
    link = db.session.scalar(select(ShareLink).where(ShareLink.token_hash == hash_share_token(token)))
    if link is None:
        raise NotFound("share link", "")
    state = link.state()
    if state != "active":
        raise LinkGone(link, state)
    db.session.execute(update(ShareLink).where(ShareLink.id == link.id).values(
        view_count=ShareLink.view_count + 1, last_viewed_at=utcnow()))
    db.session.commit()
    db.session.refresh(link)
    return link, db.session.get(TrainingJob, link.training_job_id)
