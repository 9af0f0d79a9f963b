"""The audit trail as ``GET /api/audit`` answers it."""
from __future__ import annotations

from pydantic import Field

from control.responses.common import AnyObject, Out, Timestamp


class AuditEntryOut(Out):
    """Who did what to which thing, and when. Entries are append-only."""

    id: int = Field(description="increasing: a later entry has a larger id")
    at: Timestamp
    actor_id: str | None = Field(description="the user; null: the system (or a user since removed)")
    actor_email: str | None = Field(description="the user's email as it was; null: the system")
    action: str = Field(description="job.created, job.downloaded, user.role_changed, ...")
    target_type: str = Field(description="job, share_link, budget, rubric, template, user")
    target_id: str | None
    job_id: str | None = Field(description="the job it concerns (kept after the job is deleted)")
    details: AnyObject = Field(description="what changed: a download's kind, a role's from and to, ...")
    client_address: str | None = Field(description="where the request came from")


class AuditPage(Out):
    data: list[AuditEntryOut] = Field(description="newest first")
    next_before: int | None = Field(description="pass as before= for the next (older) page; null: no more")
