"""Blind review, the quality gate, delivery decisions, share links and rubrics as the API
shows them."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from control.responses.common import AnyObject, Out, Timestamp


class ReviewProgress(Out):
    done: int
    total: int


class ReviewItemPage(Out):
    """One item for the calling reviewer; ``item`` is null when there is nothing left (or
    nothing at ``position``). Emotional-intelligence items carry ``answers`` labelled A and B
    only: which model wrote which stays on the server."""

    job_id: str
    run: str = Field(description="the evaluation under review; send it back with the scores")
    suite: Literal["ei", "brand_voice"]
    position: int | None
    progress: ReviewProgress
    final: bool = Field(description="your scenario scores are complete and can no longer change")
    item: AnyObject | None


class ReviewSaved(Out):
    saved: str
    suite: Literal["ei", "brand_voice"]
    run: str
    progress: ReviewProgress
    next_position: int | None = Field(description="your next unscored item; null: all scored")


class ReviewSummary(Out):
    """People's scores so far, aggregated, and each reviewer's progress."""

    job_id: str
    run: str
    ei: AnyObject | None
    brand: AnyObject | None
    rubric: AnyObject
    reviewers: list[AnyObject]


class GateItem(Out):
    id: str
    name: str
    status: Literal["met", "not_met", "waiting_for_review", "not_measured"]
    value_text: str
    target_text: str | None


class DecisionOut(Out):
    id: str
    job_id: str
    decision: Literal["approved", "rejected"]
    reason: str
    run_id: str | None
    gate: list[GateItem]
    measures: list[AnyObject]
    decided_by: str | None
    decided_by_email: str | None
    decided_at: Timestamp


class GateOut(Out):
    """Each gated measure against its target, where the job stands, and every decision."""

    job_id: str
    run: str | None
    items: list[GateItem]
    standing: Literal["met", "not_met", "waiting_for_review"]
    delivery_status: Literal["approved", "rejected"] | None
    decision: DecisionOut | None = Field(description="the decision on the evaluation shown; null: none yet")
    decided_on_earlier_evaluation: bool = Field(
        description="the newest decision was made on an earlier evaluation: it needs deciding again")
    history: list[DecisionOut]


class ShareLinkOut(Out):
    id: str
    job_id: str
    state: Literal["active", "revoked", "expired"]
    created_by: str | None
    created_at: Timestamp
    expires_at: Timestamp
    revoked_at: Timestamp | None
    views: int
    last_viewed_at: Timestamp | None


class ShareLinkCreated(ShareLinkOut):
    url: str = Field(description="the public link: shown in this answer only")


class ShareLinkList(Out):
    data: list[ShareLinkOut]


class RubricOut(Out):
    id: str
    name: str
    client: str | None
    characteristics: list[AnyObject]
    created_by: str | None
    created_at: Timestamp | None
    archived_at: Timestamp | None


class RubricList(Out):
    data: list[RubricOut]


class ReportVersions(Out):
    data: list[AnyObject]
