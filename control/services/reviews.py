"""Blind review: one item at a time, for reviewers (and admins), in the console and the API.

- **Emotional intelligence.** A reviewer sees a scenario and two answers labelled A and B.
  Which model wrote A is derived on the server from a keyed hash of the reviewer, the
  evaluation and the scenario: the order differs per reviewer and is never in the page nor
  in what the API returns. The reviewer scores each answer 1-5 on empathy, clarity and
  appropriateness and prefers A, B or neither; the server stores the scores as base and
  adapter.
- **Brand voice.** A reviewer scores one adapter answer 1-5 on every characteristic of
  the job's rubric.

Each item is saved on its own (a reviewer can stop and come back); every reviewer goes
through the items in an order of their own. Reviews belong to the evaluation they scored:
the job's newest completed one.
"""
from __future__ import annotations

import hashlib
import hmac

from flask import current_app
from sqlalchemy.exc import IntegrityError

from control.extensions import db
from control.models import JobStatus, Review, TrainingJob, User, utcnow
from control.services import audit, evaluations, queue, review_scores
from control.services.exceptions import Conflict, Forbidden, NotFound
from control.services.rubrics import rubric_of
from shared import suites
from shared.errors import ConfigError, Problem
from shared.evaluation.reviews import EI_CRITERIA

LABELS = ("A", "B")


def require_reviewer(user: User) -> None:
    if not user.can_review:
        raise Forbidden("blind review is for users with the reviewer role (or admins); "
                        "an admin can give it: pipeline users create --role reviewer")


def reviewable_job(user: User, job_id: str) -> TrainingJob:
    """A completed job a reviewer may review: any user's (review is an organisation's role)."""
    require_reviewer(user)
    job = db.session.get(TrainingJob, job_id)
    if job is None:
        raise NotFound("training job", job_id)
    return job


def current_run(job: TrainingJob) -> str:
    """The evaluation reviews go to: the job's newest completed one."""
    if job.status != JobStatus.COMPLETED:
        raise Conflict(f"job {job.id} is {job.status}: only a completed job's answers are reviewed",
                       code="not_ready")
    try:
        return evaluations.chosen(job, None, evaluations.runs_of(job))["id"]
    except NotFound:
        raise Conflict(f"job {job.id} has no completed evaluation to review", code="not_ready") from None


def _key(*parts: str) -> bytes:
    return hmac.new(current_app.config["SECRET_KEY"].encode(), ":".join(parts).encode(), hashlib.sha256).digest()


def adapter_label(reviewer_id: str, run_id: str, item_id: str) -> str:
    """Which label (A or B) the adapter's answer wears for this reviewer."""
    return LABELS[_key("ab", reviewer_id, run_id, item_id)[0] & 1]


def ordered(reviewer_id: str, run_id: str, samples: list) -> list:
    """The items in this reviewer's own order."""
    return sorted(samples, key=lambda s: _key("order", reviewer_id, run_id, s.id))


def _saved(job: TrainingJob, run_id: str, reviewer_id: str, suite: str) -> dict[str, Review]:
    return {r.item_id: r for r in review_scores.rows(job, run_id, suite) if r.reviewer_id == reviewer_id}


def _ei_scores_as_labels(row: Review, a_is: str) -> dict:
    """A stored EI review in the labels this reviewer saw."""
    label = {"adapter": "A" if a_is == "adapter" else "B", "base": "B" if a_is == "adapter" else "A"}
    return {"answers": {label[m]: row.scores[m] for m in ("base", "adapter")},
            "preference": "tie" if row.preference == "tie" else label[row.preference]}


def _progress(samples: list, scored: set[str]) -> tuple[int | None, dict]:
    """The first unscored item's position (1-based; None: all scored), and how far along."""
    first = next((i + 1 for i, s in enumerate(samples) if s.id not in scored), None)
    return first, {"done": sum(1 for s in samples if s.id in scored), "total": len(samples)}


def item(user: User, job: TrainingJob, suite: str, position: int | None = None) -> dict:
    """One item for this reviewer: at ``position`` (1-based), or the first not yet scored.
    ``item`` is None when there is nothing at that position (or nothing left)."""
    run_id = current_run(job)
    layout = evaluations.layout_of(job, run_id)
    samples = ordered(user.id, run_id, review_scores.items(job, layout, suite))
    saved = _saved(job, run_id, user.id, suite)
    first_unscored, progress = _progress(samples, set(saved))
    position = first_unscored if position is None else position
    out = {"job_id": job.id, "run": run_id, "suite": suite, "position": position, "progress": progress,
           "final": suite == "ei" and progress["done"] == progress["total"] > 0, "item": None}
    if position is None or not 1 <= position <= len(samples):
        return out
    sample = samples[position - 1]
    body = {"id": sample.id, "category": sample.category, "conversation": sample.turns,
            "system": sample.system}
    row = saved.get(sample.id)
    if suite == "ei":
        a_is = "adapter" if adapter_label(user.id, run_id, sample.id) == "A" else "base"
        texts = {"adapter": sample.adapter, "base": sample.base}
        body["answers"] = {"A": texts[a_is], "B": texts["base" if a_is == "adapter" else "adapter"]}
        body["criteria"] = [{"id": c.id, "name": c.id.capitalize(), "description": c.description}
                            for c in suites.emotional_intelligence().criteria]
        body["guidance"] = sample.guidance
        body["saved"] = _ei_scores_as_labels(row, a_is) if row else None
    else:
        body["answer"] = sample.adapter
        body["characteristics"] = rubric_of(job)["characteristics"]
        body["saved"] = {"scores": row.scores} if row else None
    out["item"] = body
    return out


def _check_scores(values: dict | None, keys: list[str], field: str) -> list[Problem]:
    values = values or {}
    problems = [Problem(field, f"missing score for {k!r}", f"{field}.{k}") for k in keys if k not in values]
    problems += [Problem(field, f"unknown {k!r}: expected {', '.join(keys)}", f"{field}.{k}")
                 for k in values if k not in keys]
    return problems


def save(user: User, job: TrainingJob, req) -> dict:
    """Store one item's scores (``control.schemas.ReviewRequest``), replacing this reviewer's
    earlier ones; answers with the next item to score. Commits."""
    run_id = current_run(job)
    if req.run is not None and req.run != run_id:
        raise Conflict(f"the evaluation under review changed from {req.run} to {run_id}; "
                       "reload the item", code="evaluation_changed")
    layout = evaluations.layout_of(job, run_id)
    samples = review_scores.items(job, layout, req.suite)
    ids = {s.id for s in samples}
    if req.item_id not in ids:
        raise ConfigError([Problem("item_id", f"no {req.suite} item {req.item_id!r} in this evaluation",
                                   "item_id")])
    if req.suite == "ei":
        answers = {k: dict(v) for k, v in (req.answers or {}).items()}
        problems = _check_scores(answers, list(LABELS), "answers")
        for label in LABELS:
            if label in answers:
                problems += _check_scores(answers[label], list(EI_CRITERIA), f"answers.{label}")
        if req.preference is None:
            problems.append(Problem("preference", "pick the better answer: A, B or tie", "preference"))
        if req.scores is not None:
            problems.append(Problem("scores", "the emotional-intelligence suite takes answers, not scores", "scores"))
        if problems:
            raise ConfigError(problems)
        a_is = "adapter" if adapter_label(user.id, run_id, req.item_id) == "A" else "base"
        model_of = {"A": a_is, "B": "base" if a_is == "adapter" else "adapter"}
        scores = {model_of[label]: answers[label] for label in LABELS}
        preference = "tie" if req.preference == "tie" else model_of[req.preference]
    else:
        keys = [c["id"] for c in rubric_of(job)["characteristics"]]
        problems = _check_scores(req.scores, keys, "scores")
        if req.answers is not None or req.preference is not None:
            problems.append(Problem("answers", "brand voice takes scores on the rubric, not answers", "answers"))
        if problems:
            raise ConfigError(problems)
        scores, preference = dict(req.scores), None
    if req.suite == "ei" and set(_saved(job, run_id, user.id, "ei")) >= ids:
        # Once a reviewer has scored every scenario they see the figures by model: changing a
        # score then would let them read off which label was which.
        raise Conflict("your blind review of the scenarios is complete, and final: the figures by model "
                       "are shown to you now", code="review_complete")
    for _ in range(2):      # a double submit races its twin: the second one updates
        row = _saved(job, run_id, user.id, req.suite).get(req.item_id)
        if row is None:
            db.session.add(Review(training_job_id=job.id, run_id=run_id, reviewer_id=user.id, suite=req.suite,
                                  item_id=req.item_id, scores=scores, preference=preference))
        else:
            row.scores, row.preference, row.updated_at = scores, preference, utcnow()
        audit.record("review.submitted", actor=user, target_type="job", target_id=job.id, job_id=job.id,
                     details={"suite": req.suite, "item_id": req.item_id, "run": run_id,
                              "replaced": row is not None})
        try:
            db.session.commit()
            break
        except IntegrityError:
            db.session.rollback()
    else:
        raise Conflict(f"your scores for {req.item_id} could not be saved while another save of them ran; "
                       "send them again", code="concurrent_save")
    queue.enqueue_report(job.id, "reviews")
    scored = set(_saved(job, run_id, user.id, req.suite))
    position, progress = _progress(ordered(user.id, run_id, samples), scored)
    return {"saved": req.item_id, "suite": req.suite, "run": run_id, "progress": progress,
            "next_position": position}
