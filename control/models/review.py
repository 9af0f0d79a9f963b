"""People's blind scores, the rubrics they score against, and the delivery decisions.

- ``Rubric``: a named list of brand-voice characteristics for a client, made by an admin;
  a job picks one, and without one it is scored on the documents' rubric
  (``shared/suites/brand_voice.json``).
- ``Review``: one reviewer's scores for one item of one evaluation: an emotional-intelligence
  scenario (both answers, stored as base and adapter: the A/B order a reviewer saw is
  derived on the server and never stored in a page) or one adapter answer on the rubric.
- ``DeliveryDecision``: an approval or rejection for delivery, with its reason and the
  measures as they stood; the job's ``delivery_status`` is the newest one.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from control.extensions import db
from control.models.types import JSONType, UTCDateTime, iso, new_id, utcnow

REVIEW_SUITES = ("ei", "brand_voice")
DECISIONS = ("approved", "rejected")


class Rubric(db.Model):
    __tablename__ = "rubrics"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id("rub"))
    name: Mapped[str] = mapped_column(String(200), unique=True)
    client: Mapped[str | None] = mapped_column(String(200))
    characteristics: Mapped[list] = mapped_column(JSONType)     # [{id, name, description}]
    created_by: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime)   # set: no new job picks it

    def to_dict(self) -> dict:
        return {"id": self.id, "name": self.name, "client": self.client,
                "characteristics": self.characteristics, "created_by": self.created_by,
                "created_at": iso(self.created_at), "archived_at": iso(self.archived_at)}


class Review(db.Model):
    __tablename__ = "reviews"
    __table_args__ = (UniqueConstraint("training_job_id", "run_id", "reviewer_id", "suite", "item_id",
                                       name="uq_reviews_item"),
                      Index("ix_reviews_job_run", "training_job_id", "run_id"))

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id("rev"))
    training_job_id: Mapped[str] = mapped_column(ForeignKey("training_jobs.id", ondelete="CASCADE"))
    run_id: Mapped[str] = mapped_column(String(32))          # "training" or a re-evaluation's id
    reviewer_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    suite: Mapped[str] = mapped_column(String(16))           # ei | brand_voice
    item_id: Mapped[str] = mapped_column(String(128))        # the sample's id in its suite
    scores: Mapped[dict] = mapped_column(JSONType)           # ei: {base: {...}, adapter: {...}}; brand: {id: n}
    preference: Mapped[str | None] = mapped_column(String(8))   # ei: adapter | base | tie
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    reviewer = relationship("User")


class DeliveryDecision(db.Model):
    __tablename__ = "delivery_decisions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id("dec"))
    training_job_id: Mapped[str] = mapped_column(ForeignKey("training_jobs.id", ondelete="CASCADE"), index=True)
    decision: Mapped[str] = mapped_column(String(16))        # approved | rejected
    reason: Mapped[str] = mapped_column(Text)
    run_id: Mapped[str | None] = mapped_column(String(32))   # the evaluation it was judged on
    gate: Mapped[list] = mapped_column(JSONType)             # each gated measure's status at the time
    measures: Mapped[list] = mapped_column(JSONType)         # the measures at the time
    decided_by: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    decider = relationship("User")

    def to_dict(self) -> dict:
        return {"id": self.id, "job_id": self.training_job_id, "decision": self.decision,
                "reason": self.reason, "run_id": self.run_id, "gate": self.gate, "measures": self.measures,
                "decided_by": self.decided_by, "decided_by_email": self.decider.email if self.decider else None,
                "decided_at": iso(self.decided_at)}
