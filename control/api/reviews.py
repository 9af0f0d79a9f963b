"""Blind review over the API, for reviewers and admins: ``GET .../reviews/next`` (one item,
answers labelled A and B), ``POST .../reviews`` (its scores), ``GET .../reviews`` (the
aggregates and each reviewer's progress)."""
from __future__ import annotations

from flask import g, jsonify

from control.api.blueprint import bp
from control.api.documentation import api_doc
from control.api.requests import json_body, query_args
from control.responses import ErrorOut, ReviewItemPage, ReviewSaved, ReviewSummary
from control.schemas import ReviewQuery, ReviewRequest
from control.services import evaluations, review_scores, reviews


@bp.get("/training/jobs/<job_id>/reviews/next")
@api_doc("The next item for you to score blind (or the one at ?position=): an emotional-intelligence "
         "scenario with answers A and B, or an adapter answer and the job's brand-voice rubric",
         query=ReviewQuery, responses={200: ReviewItemPage, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut})
def next_review_item(job_id):
    job = reviews.reviewable_job(g.user, job_id)
    q = query_args(ReviewQuery)
    return jsonify(reviews.item(g.user, job, q.suite, q.position))


@bp.post("/training/jobs/<job_id>/reviews")
@api_doc("Save your scores for one item (replacing your earlier ones); answers with your next item",
         body=ReviewRequest, responses={200: ReviewSaved, 400: ErrorOut, 403: ErrorOut, 409: ErrorOut})
def save_review(job_id):
    job = reviews.reviewable_job(g.user, job_id)
    return jsonify(reviews.save(g.user, job, json_body(ReviewRequest)))


@bp.get("/training/jobs/<job_id>/reviews")
@api_doc("People's scores so far: the emotional-intelligence improvement with its interval, the "
         "win rate, agreement, brand voice with flagged answers, and each reviewer's progress",
         responses={200: ReviewSummary, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut})
def review_summary(job_id):
    job = reviews.reviewable_job(g.user, job_id)
    run_id = reviews.current_run(job)
    layout = evaluations.layout_of(job, run_id)
    people = review_scores.people(job, run_id, layout)
    if review_scores.mid_review(g.user, job, run_id, layout):
        people = review_scores.blinded({"reviews": people})["reviews"]
    return jsonify({"job_id": job.id, "run": run_id, **people})
