"""The audit trail: who did what to which thing, and when. Entries are append-only: they are
written in the same transaction as the change they record (``control/services/audit.py``),
and the session refuses to update or delete one."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, event
from sqlalchemy.orm import Mapped, Session, mapped_column

from control.extensions import db
from control.models.types import BigId, JSONType, UTCDateTime, iso, utcnow

# Every action the trail records; ``audit.record`` refuses any other name.
AUDIT_ACTIONS = (
    "job.created", "job.started", "job.cancelled", "job.retried", "job.deleted", "job.edited",
    "job.downloaded", "job.approval_decided", "job.compared",
    "review.submitted", "delivery.approved", "delivery.rejected",
    "share.created", "share.revoked",
    "budget.changed", "budget.alerts_changed",
    "rubric.created", "rubric.changed", "rubric.archived",
    "template.created", "template.changed", "template.deleted",
    "user.created", "user.role_changed", "user.deactivated", "user.reactivated",
    "user.password_link_created", "user.password_set",
)


class AuditEntry(db.Model):
    __tablename__ = "audit_entries"
    __table_args__ = (Index("ix_audit_entries_at", "at"),
                      Index("ix_audit_entries_actor_id_at", "actor_id", "at"),
                      Index("ix_audit_entries_action_at", "action", "at"),
                      Index("ix_audit_entries_training_job_id", "training_job_id"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor_id: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))  # null: the system
    actor_email: Mapped[str | None] = mapped_column(String(320))   # kept as it was, should the user go
    action: Mapped[str] = mapped_column(String(48))
    target_type: Mapped[str] = mapped_column(String(32))           # job, template, rubric, budget, user, ...
    target_id: Mapped[str | None] = mapped_column(String(64))
    training_job_id: Mapped[str | None] = mapped_column(String(32))  # no key: a deleted job keeps its trail
    details: Mapped[dict] = mapped_column(JSONType, default=dict)
    client_address: Mapped[str | None] = mapped_column(String(64))

    def to_dict(self) -> dict:
        return {"id": self.id, "at": iso(self.at), "actor_id": self.actor_id, "actor_email": self.actor_email,
                "action": self.action, "target_type": self.target_type, "target_id": self.target_id,
                "job_id": self.training_job_id, "details": self.details or {},
                "client_address": self.client_address}


@event.listens_for(Session, "before_flush")
def _append_only(session: Session, flush_context, instances) -> None:
    """An entry once written is never changed or removed."""
    for obj in list(session.dirty) + list(session.deleted):
        if isinstance(obj, AuditEntry) and (obj in session.deleted or session.is_modified(obj)):
            raise RuntimeError("audit entries are append-only")
