"""A job's evaluation: ``/evaluation`` (the measures against their targets), ``/evaluation/samples``
(prompt, base answer, adapter answer, reference, scores), and ``POST /evaluate`` (run the
suite again on a finished job)."""
from __future__ import annotations

from flask import g, jsonify

from control.api.blueprint import bp
from control.api.documentation import api_doc
from control.api.requests import json_body, query_args
from control.responses import ErrorOut, EvaluationOut, EvaluationRunOut, SamplesPage
from control.schemas import EvaluationQuery, EvaluationRequest, SamplesQuery
from control.services import evaluations
from control.services.access import visible_job


@bp.get("/training/jobs/<job_id>/evaluation")
@api_doc("Each measure with base, adapter, improvement, 95% interval, target and status "
         "(met, not_met, waiting_for_review), and the data it was computed on; ?run= picks an evaluation",
         query=EvaluationQuery, responses={200: EvaluationOut, 404: ErrorOut})
def job_evaluation(job_id):
    job = visible_job(g.user, job_id)
    return jsonify(evaluations.view(job, query_args(EvaluationQuery).run, viewer=g.user))


@bp.get("/training/jobs/<job_id>/evaluation/samples")
@api_doc("One page of a suite's answers: prompt, base answer, adapter answer, reference and "
         "per-sample scores; filter by category", query=SamplesQuery,
         responses={200: SamplesPage, 404: ErrorOut})
def job_evaluation_samples(job_id):
    job = visible_job(g.user, job_id)
    q = query_args(SamplesQuery)
    return jsonify(evaluations.samples(job, q.suite, run_id=q.run, category=q.category,
                                       page=q.page, per_page=q.per_page, viewer=g.user))


@bp.post("/training/jobs/<job_id>/evaluate")
@api_doc("Evaluate a completed job again (all of the suite, a quick sample, or with your own "
         "prompts: a training file of purpose 'evaluation'); its results are the job's too",
         body=EvaluationRequest, responses={202: EvaluationRunOut, 404: ErrorOut, 409: ErrorOut})
def evaluate_job(job_id):
    job = visible_job(g.user, job_id)
    run = evaluations.start(g.user, job, json_body(EvaluationRequest))
    return jsonify(run.to_dict()), 202
