"""The automatic judge on an evaluation's answers (``judge.py`` asks the endpoint): every
scenario, held-out turn and customer prompt both models answered, judged pairwise in both
orders. The full report goes to storage next to the evaluation (``judge.json``); its counts
and win rate to the job's artifact row (a training run's evaluation) or to the
re-evaluation's row. The report always says that the judge is a model."""
from __future__ import annotations

import json
import logging

from flask import current_app

from control.extensions import db
from control.models import EvaluationRun, ModelArtifact, TrainingJob
from control.services import queue
from control.services.evaluations import TRAINING_RUN, layout_of
from control.services.judge import MAX_ITEMS, JudgeError, JudgeItem, JudgeReport, JudgeSettings, judge_pairs
from control.services.storage import get_storage
from shared.evaluation.report import read_samples

log = logging.getLogger(__name__)
JUDGED_SUITES = ("ei", "heldout", "custom")
CONTEXT_TURNS = 6


def prompt_text(messages: list[dict]) -> str:
    """The conversation as the judge reads it: its last turns, each with who said it.

    >>> prompt_text([{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Help."}])
    'Client: Help.'
    """
    names = {"user": "Client", "assistant": "Consultant"}
    turns = [m for m in messages if m["role"] in names][-CONTEXT_TURNS:]
    return "\n\n".join(f"{names[m['role']]}: {m['content']}" for m in turns)


def items_of(job: TrainingJob, run_id: str | None) -> list[JudgeItem]:
    storage, layout = get_storage(), layout_of(job, run_id)
    items: list[JudgeItem] = []
    for suite in JUDGED_SUITES:
        for s in read_samples(storage, layout.samples(suite)):
            items.append(JudgeItem(id=f"{suite}/{s.id}", suite=suite, category=s.category,
                                   prompt=prompt_text(s.prompt), base_answer=s.base,
                                   adapter_answer=s.adapter, reference=s.reference))
    return items


def _record(job: TrainingJob, run_id: str | None, outcome: dict) -> None:
    if run_id in (None, TRAINING_RUN):
        row = db.session.query(ModelArtifact).filter_by(training_job_id=job.id).with_for_update().one_or_none()
    else:
        row = db.session.get(EvaluationRun, run_id, with_for_update=True)
    if row is not None:
        row.judge = outcome
    db.session.commit()


def judge_evaluation(job_id: str, run_id: str | None = None) -> str:
    """Judge one evaluation's answers; returns what became of it."""
    job = db.session.get(TrainingJob, job_id)
    if job is None:
        return "job gone"
    try:
        settings = JudgeSettings.from_config(current_app.config)
        items = items_of(job, run_id)
        # The judge takes MAX_ITEMS a call: a full suite with many held-out turns is judged in parts.
        parts = [judge_pairs(items[i:i + MAX_ITEMS], settings=settings) for i in range(0, len(items), MAX_ITEMS)]
        report = JudgeReport(settings.model, settings.host, tuple(v for p in parts for v in p.items)).to_dict()
    except (JudgeError, ValueError) as exc:
        log.warning("judging job %s evaluation %s: %s", job_id, run_id or TRAINING_RUN, exc)
        _record(job, run_id, {"model": current_app.config.get("JUDGE_MODEL"), "error": str(exc),
                              "judge_is_a_model": True})
        return "failed"
    get_storage().put_bytes(layout_of(job, run_id).judge, json.dumps(report).encode())
    _record(job, run_id, {k: report[k] for k in ("model", "counts", "win_rate", "by_suite", "note",
                                                 "judge_is_a_model")})
    queue.enqueue_report(job.id, "judge")
    return "judged"
