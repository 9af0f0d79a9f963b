"""Events into rows: stored once per (job, attempt, seq), applied to the job, reconciled from storage."""
from __future__ import annotations

import pytest

from control.extensions import db
from control.models import JobAttempt, MetricPoint, TrainingEvent
from control.services.ingest import ingest
from control.services.storage import get_storage
from control.services.monitoring import finish_attempt
from handler.event_log import EventLog
from shared.events import EventStream
from shared.storage.layout import JobLayout
from tests.job_events import events_of


def test_a_chunk_delivered_twice_is_stored_once(job):
    events = events_of(job.id)
    attempt = job.current_attempt
    assert ingest(job, attempt, events) == 5
    assert ingest(job, attempt, events) == 0
    assert ingest(job, attempt, events[2:] + events[:1]) == 0
    assert db.session.query(TrainingEvent).filter_by(training_job_id=job.id).count() == 5
    assert db.session.query(MetricPoint).filter_by(training_job_id=job.id).count() == 3
    assert attempt.events_received == 5


def test_events_keep_the_job_row_current(job):
    ingest(job, job.current_attempt, events_of(job.id, steps=4))
    db.session.refresh(job)
    assert job.status == "training" and job.current_stage == "training"
    assert (job.current_step, job.total_steps) == (4, 10)
    assert job.latest_loss == pytest.approx(2.6)
    assert job.progress_percentage == pytest.approx(10 + 80 * 0.4)
    assert job.estimated_time_remaining_minutes == pytest.approx(6.0)
    assert job.started_at is not None


def test_events_of_another_job_or_breaking_the_contract_are_dropped(job):
    good = events_of(job.id, steps=1)
    foreign = events_of("tj_other", steps=1)
    broken = [{"type": "metrics", "job_id": job.id, "attempt": 1, "seq": 99}]
    assert ingest(job, job.current_attempt, foreign + broken + good) == 3


def test_a_resumed_attempt_rewrites_the_steps_it_repeats(job):
    ingest(job, job.current_attempt, events_of(job.id, steps=5))
    second = JobAttempt(job=job, number=2, runpod_job_id="rp-2")
    db.session.add(second)
    db.session.commit()
    s = EventStream(job.id, 2)
    ingest(job, second, [s.make("metrics", step=4, total_steps=10, epoch=0.4, loss=1.0, lr=1e-4)])
    points = {p.step: p for p in db.session.query(MetricPoint).filter_by(training_job_id=job.id)}
    assert len(points) == 5 and points[4].training_loss == 1.0 and points[4].attempt == 2
    assert job.current_step == 4


def test_an_ended_attempt_is_reconciled_from_the_handlers_event_log(job, app):
    """Chunks read from the stream and lost are recovered from storage when the attempt ends."""
    s = EventStream(job.id, 1)
    log = EventLog(get_storage(), JobLayout(job.storage_prefix), 1)
    events = [s.make("stage", stage="training"),
              s.make("metrics", step=1, total_steps=1, epoch=1.0, loss=1.5, lr=1e-4),
              s.make("evaluation", conversations=2, targets=4, tokens=100,
                     base={"loss": 3.0, "perplexity": 20.0}, trained={"loss": 2.0, "perplexity": 7.4},
                     improvement_pct=63.0),
              s.make("artifact", kind="adapter", key=f"{job.storage_prefix}/adapter", size_bytes=1234),
              s.make("completed", summary={"steps": 1})]
    for e in events:
        log.record(e)
    log.flush()
    ingest(job, job.current_attempt, events[:1])        # only the first chunk made it
    finish_attempt(job, job.current_attempt, "COMPLETED", {"status": "COMPLETED"})
    db.session.refresh(job)
    assert job.status == "completed" and job.progress_percentage == 100.0
    assert job.latest_perplexity == 7.4
    assert job.current_attempt.outcome == "completed"
    assert db.session.query(TrainingEvent).filter_by(training_job_id=job.id).count() == 5


def test_events_of_a_stale_attempt_are_stored_but_not_applied(job):
    ingest(job, job.current_attempt, events_of(job.id, steps=2))
    second = JobAttempt(job=job, number=2, runpod_job_id="rp-2", runpod_status="IN_PROGRESS")
    db.session.add(second)
    db.session.commit()
    ingest(job, second, [EventStream(job.id, 2).make("stage", stage="training", resumed_from_step=0)])
    late = EventStream(job.id, 1, 500).make("metrics", step=9, total_steps=10, epoch=0.9, loss=0.1, lr=1e-4)
    ingest(job, job.attempts[0], [late])
    db.session.refresh(job)
    assert job.current_step == 0 and job.latest_loss != 0.1
    assert db.session.query(TrainingEvent).filter_by(training_job_id=job.id, attempt=1, seq=500).count() == 1


def test_the_handlers_error_event_in_the_final_status_is_stored_and_classified(job):
    s = EventStream(job.id, 1)
    err = s.make("error", error={"type": "dataset_format", "user_error": True,
                                 "message": "2 problems found", "fix": "fix the file"})
    finish_attempt(job, job.current_attempt, "FAILED", {"status": "FAILED", "error": err})
    db.session.refresh(job)
    assert (job.status, job.error_type, job.error_fix) == ("failed", "dataset_format", "fix the file")
    assert db.session.query(TrainingEvent).filter_by(training_job_id=job.id, type="error").count() == 1


def test_a_classified_error_known_only_from_the_final_status_still_says_cause_and_fix(job):
    """runpod 1.12 reports a yielded error as the repr of its dict; the log may be missing."""
    reply = {"status": "FAILED", "error": str({"type": "out_of_memory", "user_error": True,
                                               "message": "the GPU ran out of memory",
                                               "fix": "Reduce batch_size to 2",
                                               "cause": "activations", "adjustment": {"batch_size": 2}})}
    finish_attempt(job, job.current_attempt, "FAILED", reply)
    db.session.refresh(job)
    assert (job.status, job.error_type, job.error_fix) == ("failed", "out_of_memory", "Reduce batch_size to 2")
    assert (job.error_cause, job.error_user, job.error_adjustment) == ("activations", True, {"batch_size": 2})


def test_the_metrics_route_thins_long_curves_evenly_and_serves_increments(job, client, auth):
    ingest(job, job.current_attempt, events_of(job.id, steps=23))
    thinned = client.get(f"/api/training/jobs/{job.id}/metrics?max_points=5", headers=auth).get_json()
    assert (thinned["points_total"], thinned["every_nth"]) == (23, 5)
    assert [p["step"] for p in thinned["data"]] == [5, 10, 15, 20, 23]
    assert thinned["data"][-1]["training_loss"] == pytest.approx(3.0 - 2.3)
    newer = client.get(f"/api/training/jobs/{job.id}/metrics?since_step=20", headers=auth).get_json()
    assert [p["step"] for p in newer["data"]] == [21, 22, 23]


def test_a_heartbeat_keeps_a_loading_attempt_alive_without_moving_the_job(job):
    s = EventStream(job.id, 1)
    attempt = job.current_attempt
    ingest(job, attempt, [s.make("stage", stage="model_loading")])
    first = attempt.last_event_at
    ingest(job, attempt, [s.make("heartbeat", stage="model_loading", activity="loading the base model",
                                 elapsed_seconds=60.0)])
    db.session.refresh(job)
    assert attempt.last_event_at > first and attempt.events_received == 2
    assert (job.status, job.current_stage, job.current_step) == ("model_loading", "model_loading", None)
