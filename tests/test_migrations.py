"""Data the migrations carry over: revision 0009 fills each job's perplexity gain from what
was recorded before it (the adapter's scores, then the newest completed re-evaluation)."""
from __future__ import annotations

from flask_migrate import downgrade, upgrade
from sqlalchemy import text

from control.extensions import db
from control.models import EvaluationRun, ModelArtifact, User
from tests.finished_runs import seed_finished_runs


def test_revision_0009_fills_the_gain_of_jobs_evaluated_before_it(app, make_user):
    make_user(email="ana@example.com")
    user = db.session.scalar(db.select(User).where(User.email == "ana@example.com"))
    ids = seed_finished_runs(app, user, n=3)
    expected = {}
    for job_id in ids:
        run = db.session.scalar(db.select(EvaluationRun).where(EvaluationRun.training_job_id == job_id))
        expected[job_id] = run.summary["improvement_pct"]
    # The third job's only figure is its adapter's (evaluated in training, never again).
    db.session.execute(db.delete(EvaluationRun).where(EvaluationRun.training_job_id == ids[2]))
    db.session.add(ModelArtifact(training_job_id=ids[2], perplexity_improvement_pct=12.5))
    # The first has both: the newer re-evaluation wins over the adapter's figure.
    db.session.add(ModelArtifact(training_job_id=ids[0], perplexity_improvement_pct=-3.0))
    db.session.commit()
    expected[ids[2]] = 12.5
    db.session.remove()

    downgrade(revision="0008")
    upgrade()

    gains = dict(db.session.execute(text("SELECT id, perplexity_gain_pct FROM training_jobs")).all())
    assert gains == expected and len(set(expected.values())) == 3
