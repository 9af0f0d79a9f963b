"""People's scores on an evaluation, read back and aggregated (``shared.evaluation.reviews``).

Which answers people score is fixed per evaluation: every emotional-intelligence scenario,
and for brand voice a sample of (at most) 30 of the adapter's held-out answers, the same
for every reviewer (so that their agreement can be measured), chosen by a hash of the job
and the sample's id.
"""
from __future__ import annotations

import hashlib

from sqlalchemy import func, select
from sqlalchemy.orm import joinedload

from control.extensions import db
from control.models import Review, TrainingJob
from control.services.rubrics import rubric_of
from control.services.storage import get_storage
from shared import suites
from shared.evaluation import reviews as aggregate
from shared.evaluation.report import Sample, read_samples
from shared.storage.layout import EvaluationLayout


def brand_sample(job_id: str, heldout: list[Sample]) -> list[Sample]:
    """The held-out answers people score on the rubric, in a fixed order."""
    size = suites.brand_voice().responses_to_score
    ranked = sorted(heldout, key=lambda s: hashlib.sha256(f"{job_id}:{s.id}".encode()).hexdigest())
    return ranked[:size]


def items(job: TrainingJob, layout: EvaluationLayout, suite: str) -> list[Sample]:
    """What people score in ``suite`` (``ei`` or ``brand_voice``; ``heldout_all``: every
    held-out turn)."""
    storage = get_storage()
    if suite == "ei":
        return read_samples(storage, layout.samples("ei"))
    if suite == "heldout_all":
        return read_samples(storage, layout.samples("heldout"))
    return brand_sample(job.id, read_samples(storage, layout.samples("heldout")))


def rows(job: TrainingJob, run_id: str, suite: str | None = None) -> list[Review]:
    stmt = select(Review).where(Review.training_job_id == job.id, Review.run_id == run_id)
    if suite:
        stmt = stmt.where(Review.suite == suite)
    return list(db.session.scalars(stmt.options(joinedload(Review.reviewer)).order_by(Review.created_at, Review.id)))


def people(job: TrainingJob, run_id: str, layout: EvaluationLayout) -> dict:
    """The aggregated scores of an evaluation: ``ei`` and ``brand`` (None before anyone has
    scored) and how far each reviewer has come."""
    found = rows(job, run_id)
    ei = [aggregate.EIScore(r.item_id, r.reviewer_id, r.scores["base"], r.scores["adapter"], r.preference)
          for r in found if r.suite == "ei"]
    brand_rows = [r for r in found if r.suite == "brand_voice"]
    brand = None
    rubric = rubric_of(job)
    ei_total = len(items(job, layout, "ei")) if ei else 0
    if brand_rows:
        answers = {s.id: s for s in items(job, layout, "brand_voice")}
        brand = aggregate.brand_voice(
            [aggregate.BrandScore(r.item_id, r.reviewer_id, r.scores,
                                  prompt=_client_message(answers[r.item_id]) if r.item_id in answers else "",
                                  answer=answers[r.item_id].adapter if r.item_id in answers else "")
             for r in brand_rows], rubric["characteristics"], items_total=len(answers))
    progress: dict[str, dict] = {}
    for r in found:
        who = progress.setdefault(r.reviewer_id, {"reviewer_id": r.reviewer_id, "email": r.reviewer.email,
                                                  "ei": 0, "brand_voice": 0})
        who[r.suite] += 1
    return {"ei": aggregate.emotional_intelligence(ei, items_total=ei_total), "brand": brand, "rubric": rubric,
            "reviewers": sorted(progress.values(), key=lambda p: p["email"])}


def _client_message(sample: Sample) -> str:
    turns = sample.turns
    return turns[-1]["content"] if turns else ""


def mid_review(user, job: TrainingJob, run_id: str, layout: EvaluationLayout, total: int | None = None) -> bool:
    """Whether ``user`` has started but not finished scoring the scenarios of this
    evaluation: the figures by model would then tell them which label was which.
    ``total``: how many scenarios there are, when the caller knows (else they are read)."""
    if user is None or not user.can_review:
        return False
    done = db.session.scalar(select(func.count()).select_from(Review).where(
        Review.training_job_id == job.id, Review.run_id == run_id, Review.reviewer_id == user.id,
        Review.suite == "ei"))
    if not done:
        return False
    return done < (total if total is not None else len(items(job, layout, "ei")))


HIDDEN = ("Hidden while your own blind review of the scenarios is under way: "
          "finish it to see the figures by model.")


def blinded(view: dict) -> dict:
    """An evaluation view with every emotional-intelligence figure by model taken out."""
    measures = []
    for m in view.get("measures", []):
        if m["id"] == "emotional_intelligence":
            m = {**m, "base": None, "adapter": None, "improvement": None, "interval": None, "note": HIDDEN}
        measures.append(m)
    reviews = dict(view.get("reviews") or {})
    if reviews.get("ei"):
        reviews["ei"] = {"hidden": True, "note": HIDDEN}
    return {**view, "measures": measures, "reviews": reviews, "blinded": True}
