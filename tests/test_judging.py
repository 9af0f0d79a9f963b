"""The judge's task on a stored evaluation: every answered pair judged (in parts past one
call's limit), the report kept next to the evaluation and its counts on the job's row, and a
judge that cannot be reached recorded, not raised. The judge is a local OpenAI-compatible
stand-in at the network edge."""
from __future__ import annotations

import json

import pytest

from control.extensions import db
from control.models import ModelArtifact
from control.services import judging
from control.services.storage import get_storage
from shared.storage.layout import JobLayout
from tests.openai_stand_in import OpenAIStandIn, verdict
from tests.test_console_evaluation import _job, _store_evaluation


@pytest.fixture
def evaluated(app, make_person, small_sample):
    job = _job(make_person(), small_sample, completed=True)
    _store_evaluation(job)                     # 23 held-out turns and 6 scenarios answered
    return job


def _answered(job) -> int:
    summary = json.loads(get_storage().get_bytes(JobLayout(job.storage_prefix).evaluation.summary))
    return sum(s["samples"] for s in summary["suites"].values())


def test_every_answer_is_judged_in_parts_past_one_calls_limit(app, evaluated, monkeypatch):
    monkeypatch.setattr(judging, "MAX_ITEMS", 4)
    with OpenAIStandIn(lambda request: verdict("A")) as judge:   # always "A": position bias, all ties
        app.config.update(JUDGE_BASE_URL=judge.url, JUDGE_MODEL="judge-model")
        assert judging.judge_evaluation(evaluated.id) == "judged"
        asked = len(judge.requests)
    n = _answered(evaluated)
    assert n > 4 * 7                                           # more than seven calls' worth
    report = json.loads(get_storage().get_bytes(JobLayout(evaluated.storage_prefix).evaluation.judge))
    assert len(report["items"]) == n and asked == 2 * n
    assert report["counts"] == {"win": 0, "tie": n, "loss": 0, "invalid": 0}
    row = db.session.query(ModelArtifact).filter_by(training_job_id=evaluated.id).one()
    assert row.judge["counts"]["tie"] == n and row.judge["judge_is_a_model"] is True


def test_a_judge_that_cannot_be_reached_is_recorded_on_the_row(app, evaluated):
    app.config.update(JUDGE_BASE_URL="http://127.0.0.1:9/v1", JUDGE_MODEL="judge-model", JUDGE_MAX_RETRIES=0)
    assert judging.judge_evaluation(evaluated.id) == "failed"
    row = db.session.query(ModelArtifact).filter_by(training_job_id=evaluated.id).one()
    assert row.judge["model"] == "judge-model" and "127.0.0.1" in row.judge["error"]
