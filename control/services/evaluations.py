"""A job's evaluation as users read it, and re-evaluations of finished jobs.

The handler writes each evaluation's documents under the job's prefix
(``shared.storage.layout.EvaluationLayout``: the summary, the samples, the judge's
verdicts); this module reads them back for the API and the console: the measures against
their targets (recomputed with the automatic judge's verdicts when it ran), and the samples,
a page at a time. A re-evaluation is an ``evaluate`` job on the same endpoint, recorded as
an ``EvaluationRun`` of the job with its own results.
"""
from __future__ import annotations

import json
import math

from sqlalchemy import select

from control.extensions import db
from control.models import EvaluationRun, EvaluationStatus, JobStatus, ModelArtifact, TrainingJob, User
from control.schemas import EvaluationRequest
from control.services import queue, quotas, review_scores
from control.services.exceptions import Forbidden, JobStateError, NotFound
from control.services.storage import get_storage
from control.services.training_jobs import evaluation_settings
from shared.errors import StorageError
from shared.evaluation import measures
from shared.evaluation.report import EvaluationSummary, read_samples
from shared.storage.layout import EvaluationLayout, JobLayout

TRAINING_RUN = "training"     # the id of a training run's own evaluation


def layout_of(job: TrainingJob, run_id: str | None) -> EvaluationLayout:
    """Where an evaluation of ``job`` is: the training run's, or re-evaluation ``run_id``'s."""
    layout = JobLayout(job.storage_prefix)
    return layout.evaluation if run_id in (None, TRAINING_RUN) else layout.re_evaluation(run_id).evaluation


def runs_of(job: TrainingJob) -> list[dict]:
    """Every evaluation of the job, the training run's first, then re-evaluations, newest last."""
    art = db.session.scalars(select(ModelArtifact).where(ModelArtifact.training_job_id == job.id)).first()
    out = []
    if art is not None and art.evaluation and art.evaluation.get("measures") is not None:
        out.append({"id": TRAINING_RUN, "kind": "training", "status": "completed",
                    "completed_at": None, "judge": art.judge})
    for run in db.session.scalars(select(EvaluationRun).where(EvaluationRun.training_job_id == job.id)
                                  .order_by(EvaluationRun.created_at, EvaluationRun.id)):
        out.append(run.to_dict())
    return out


def chosen(job: TrainingJob, run_id: str | None, runs: list[dict]) -> dict:
    """The run asked for among ``runs``, or the newest completed one."""
    if run_id is not None:
        found = next((r for r in runs if r["id"] == run_id), None)
        if found is None:
            raise NotFound("evaluation", run_id)
        return found
    done = [r for r in runs if r["status"] == EvaluationStatus.COMPLETED]
    if not done:
        raise NotFound("evaluation of job", job.id)
    return done[-1]


def summary_of(job: TrainingJob, run_id: str | None) -> EvaluationSummary:
    key = layout_of(job, run_id).summary
    try:
        return EvaluationSummary.model_validate_json(get_storage().get_bytes(key))
    except StorageError:
        raise NotFound("evaluation summary", key) from None


def judge_report(job: TrainingJob, run_id: str | None) -> dict | None:
    """The automatic judge's full report for an evaluation, when it ran."""
    storage, key = get_storage(), layout_of(job, run_id).judge
    if not storage.exists(key):
        return None
    return json.loads(storage.get_bytes(key))


def view(job: TrainingJob, run_id: str | None = None, *, viewer: User | None = None) -> dict:
    """Each measure with base, adapter, improvement, interval, target and status, and the data
    it was computed on; the judge's verdicts and people's scores count once there are some.
    For a ``viewer`` in the middle of their own blind review, the scenario figures by model
    are left out (``review_scores.blinded``)."""
    runs = runs_of(job)
    run = chosen(job, run_id, runs)
    if run["status"] != EvaluationStatus.COMPLETED:
        return {"job_id": job.id, "run": run, "runs": runs, "measures": [], "status": run["status"]}
    summary = summary_of(job, run["id"])
    judge = judge_report(job, run["id"])
    layout = layout_of(job, run["id"])
    people = review_scores.people(job, run["id"], layout)
    parts = {"perplexity": summary.perplexity, "forgetting": summary.forgetting, "similarity": summary.similarity}
    answered = frozenset(k for k, v in summary.suites.items() if v.get("samples"))
    ms = measures.all_measures(parts, judge_report=judge, ei_review=people["ei"], brand_review=people["brand"],
                               answered=answered)
    out = {
        "job_id": job.id, "status": "completed", "run": run, "runs": runs,
        "size": summary.size, "max_new_tokens": summary.max_new_tokens,
        "measures": [m.model_dump(mode="json") for m in ms],
        "data": summary.data, "suites": {k: {"samples": v["samples"], "categories": v["categories"]}
                                          for k, v in summary.suites.items()},
        "flags": summary.flags, "timings": summary.timings, "tokens": summary.tokens,
        "perplexity": summary.perplexity,
        "forgetting": {k: v for k, v in (summary.forgetting or {}).items() if k != "answers"} or None,
        "similarity": summary.similarity,
        "judge": {k: v for k, v in judge.items() if k != "items"} if judge else None,
        "reviews": people}
    scenarios = summary.suites.get("ei", {}).get("samples", 0)
    return review_scores.blinded(out) if review_scores.mid_review(viewer, job, run["id"], layout, scenarios) else out


def samples(job: TrainingJob, suite: str, *, run_id: str | None = None, category: str | None = None,
            page: int = 1, per_page: int = 10, clamp: bool = False, viewer: User | None = None) -> dict:
    """One page of a suite's samples: prompt, both answers, the reference and the scores.
    A page past the end is empty, or with ``clamp`` the last page (``page`` says which).
    The scenarios, which name the model behind each answer, are refused to a ``viewer`` in
    the middle of blind-reviewing them."""
    run = chosen(job, run_id, runs_of(job))
    if suite == "ei" and review_scores.mid_review(viewer, job, run["id"], layout_of(job, run["id"])):
        raise Forbidden("the scenarios' answers name the model behind each one: finish your blind "
                        "review of them first")
    rows = read_samples(get_storage(), layout_of(job, run["id"]).samples(suite))
    categories = sorted({r.category for r in rows if r.category})
    if category:
        rows = [r for r in rows if r.category == category]
    if clamp:
        page = min(page, max(1, math.ceil(len(rows) / per_page)))
    verdicts = {i["id"]: i["verdict"] for i in (judge_report(job, run["id"]) or {}).get("items", [])}
    start = (page - 1) * per_page
    return {"job_id": job.id, "run": run["id"], "suite": suite, "category": category,
            "categories": categories, "page": page, "per_page": per_page, "total": len(rows),
            "samples": [{**r.model_dump(mode="json"), "judge": verdicts.get(f"{suite}/{r.id}")}
                        for r in rows[start:start + per_page]]}


def start(user: User, job: TrainingJob, req: EvaluationRequest) -> EvaluationRun:
    """Record a re-evaluation of a completed job and queue its dispatch. Commits."""
    if job.status != JobStatus.COMPLETED:
        raise JobStateError(job, "re-evaluate", "only a completed job has an adapter to evaluate")
    active = db.session.scalars(select(EvaluationRun).where(
        EvaluationRun.training_job_id == job.id, EvaluationRun.status.in_(EvaluationStatus.active()))).first()
    if active is not None:
        raise JobStateError(job, "re-evaluate", f"re-evaluation {active.id} is still {active.status}",
                            code="evaluation_running")
    settings = evaluation_settings(user, req)
    quotas.check_active(user.id)         # a re-evaluation holds a GPU like a job (locks the owner's row)
    quotas.take_hourly(user)
    run = EvaluationRun(training_job_id=job.id, settings=settings,
                        status=EvaluationStatus.QUEUED, created_by=user.id)
    db.session.add(run)
    db.session.commit()
    queue.enqueue(queue.DISPATCH_EVALUATION, run.id)
    return run
