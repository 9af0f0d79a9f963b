"""Events into rows: stored once per (job, attempt, seq), applied to the job, reconciled from storage."""
from __future__ import annotations

import pytest

from control.extensions import db
from control.models import JobAttempt, MetricPoint, TrainingEvent, TrainingJob
from control.services.ingest import ingest
from control.services.storage import get_storage
from control.tasks import finish_attempt
from handler.event_log import EventLog
from shared.events import EventStream


@pytest.fixture
def job(client, auth, upload, small_sample):
    file_id = upload(small_sample).get_json()["id"]
    body = client.post("/api/training/jobs", headers=auth, json={"training_file_id": file_id}).get_json()
    job = db.session.get(TrainingJob, body["id"])
    attempt = JobAttempt(job=job, number=1, runpod_job_id="rp-1", runpod_status="IN_PROGRESS")
    job.status = "provisioning"
    db.session.add(attempt)
    db.session.commit()
    return job


def _events(job_id, attempt=1, steps=3):
    s = EventStream(job_id, attempt)
    out = [s.make("stage", stage="preprocessing"), s.make("stage", stage="training")]
    for step in range(1, steps + 1):
        out.append(s.make("metrics", step=step, total_steps=10, epoch=step / 10, loss=3.0 - step * 0.1,
                          lr=1e-4, eta_seconds=60.0 * (10 - step)))
    return out


def test_a_chunk_delivered_twice_is_stored_once(job):
    events = _events(job.id)
    attempt = job.current_attempt
    assert ingest(job, attempt, events) == 5
    assert ingest(job, attempt, events) == 0
    assert ingest(job, attempt, events[2:] + events[:1]) == 0
    assert db.session.query(TrainingEvent).filter_by(training_job_id=job.id).count() == 5
    assert db.session.query(MetricPoint).filter_by(training_job_id=job.id).count() == 3
    assert attempt.events_received == 5


def test_events_keep_the_job_row_current(job):
    ingest(job, job.current_attempt, _events(job.id, steps=4))
    db.session.refresh(job)
    assert job.status == "training" and job.current_stage == "training"
    assert (job.current_step, job.total_steps) == (4, 10)
    assert job.latest_loss == pytest.approx(2.6)
    assert job.progress_percentage == pytest.approx(10 + 80 * 0.4)
    assert job.estimated_time_remaining_minutes == pytest.approx(6.0)
    assert job.started_at is not None


def test_events_of_another_job_or_breaking_the_contract_are_dropped(job):
    good = _events(job.id, steps=1)
    foreign = _events("tj_other", steps=1)
    broken = [{"type": "metrics", "job_id": job.id, "attempt": 1, "seq": 99}]
    assert ingest(job, job.current_attempt, foreign + broken + good) == 3


def test_a_resumed_attempt_rewrites_the_steps_it_repeats(job):
    ingest(job, job.current_attempt, _events(job.id, steps=5))
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
    log = EventLog(get_storage(), job.storage_prefix, 1)
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


def test_an_attempt_that_ends_without_completing_fails_the_job_as_the_platforms_error(job):
    ingest(job, job.current_attempt, _events(job.id, steps=2))
    finish_attempt(job, job.current_attempt, "FAILED", {"status": "FAILED", "error": "worker lost"})
    db.session.refresh(job)
    assert job.status == "failed" and job.error_type == "worker_lost"
    assert "worker lost" in job.error_message
    assert job.current_attempt.outcome == "lost"


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
    reply = {"status": "FAILED", "error": str({"type": "out_of_memory", "user_error": False,
                                               "message": "the GPU ran out of memory",
                                               "fix": "Reduce batch_size to 2"})}
    finish_attempt(job, job.current_attempt, "FAILED", reply)
    db.session.refresh(job)
    assert (job.status, job.error_type, job.error_fix) == ("failed", "out_of_memory", "Reduce batch_size to 2")


def test_the_metrics_route_thins_long_curves_evenly_and_serves_increments(job, client, auth):
    ingest(job, job.current_attempt, _events(job.id, steps=23))
    thinned = client.get(f"/api/training/jobs/{job.id}/metrics?max_points=5", headers=auth).get_json()
    assert (thinned["points_total"], thinned["every_nth"]) == (23, 5)
    assert [p["step"] for p in thinned["data"]] == [5, 10, 15, 20, 23]
    assert thinned["data"][-1]["training_loss"] == pytest.approx(3.0 - 2.3)
    newer = client.get(f"/api/training/jobs/{job.id}/metrics?since_step=20", headers=auth).get_json()
    assert [p["step"] for p in newer["data"]] == [21, 22, 23]
