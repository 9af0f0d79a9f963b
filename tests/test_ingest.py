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


def _scheduled_dispatches():
    from control.services.queue import get_queue
    queue = get_queue()
    jobs = [queue.fetch_job(i) for i in queue.scheduled_job_registry.get_job_ids()] + queue.get_jobs()
    return [j for j in jobs if j and j.func_name.endswith("dispatch")]


def test_a_lost_attempt_is_recorded_and_a_new_one_dispatched(job, app):
    s = EventStream(job.id, 1)
    ingest(job, job.current_attempt, _events(job.id, steps=2)
           + [s.make("checkpoint", step=2, key="jobs/x/checkpoints/step-00000002")])
    ingest(job, job.current_attempt, [EventStream(job.id, 1, 100).make(
        "metrics", step=3, total_steps=10, epoch=0.3, loss=2.7, lr=1e-4)])
    finish_attempt(job, job.current_attempt, "FAILED", {"status": "FAILED", "error": "worker lost: killed by SIGKILL"})
    db.session.refresh(job)
    assert (job.status, job.checkpoint_recovery_count) == ("recovering", 1)
    attempt = job.current_attempt
    assert (attempt.outcome, attempt.last_step, attempt.steps_lost) == ("lost", 3, 1)
    assert attempt.error["type"] == "worker_lost" and attempt.error["user_error"] is False
    assert job.to_dict()["interruptions"][0]["steps_lost"] == 1
    assert len(_scheduled_dispatches()) == 1


def test_past_the_recovery_limit_the_job_fails_and_says_why(job, app):
    app.config["MAX_RECOVERIES"] = 0
    ingest(job, job.current_attempt, _events(job.id, steps=2))
    finish_attempt(job, job.current_attempt, "FAILED", {"status": "FAILED", "error": "worker lost"})
    db.session.refresh(job)
    assert job.status == "failed" and job.error_type == "worker_lost" and job.error_user is False
    assert "more than the limit of 0 recoveries" in job.error_message
    assert "MAX_RECOVERIES" in job.error_fix
    assert job.current_attempt.outcome == "lost" and _scheduled_dispatches() == []


def test_events_of_a_stale_attempt_are_stored_but_not_applied(job):
    ingest(job, job.current_attempt, _events(job.id, steps=2))
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
    ingest(job, job.current_attempt, _events(job.id, steps=23))
    thinned = client.get(f"/api/training/jobs/{job.id}/metrics?max_points=5", headers=auth).get_json()
    assert (thinned["points_total"], thinned["every_nth"]) == (23, 5)
    assert [p["step"] for p in thinned["data"]] == [5, 10, 15, 20, 23]
    assert thinned["data"][-1]["training_loss"] == pytest.approx(3.0 - 2.3)
    newer = client.get(f"/api/training/jobs/{job.id}/metrics?since_step=20", headers=auth).get_json()
    assert [p["step"] for p in newer["data"]] == [21, 22, 23]


def test_an_attempt_settled_twice_recovers_once(job, app):
    """A monitor and a second one the sweep enqueued again both see the attempt end."""
    ingest(job, job.current_attempt, _events(job.id, steps=2))
    reply = {"status": "FAILED", "error": "worker lost: killed by SIGKILL"}
    finish_attempt(job, job.current_attempt, "FAILED", reply)
    finish_attempt(job, job.attempts[0], "FAILED", reply)
    db.session.refresh(job)
    assert (job.status, job.checkpoint_recovery_count) == ("recovering", 1)
    assert len(_scheduled_dispatches()) == 1


@pytest.fixture
def refusing_endpoint():
    """``refusing_endpoint(status)``: the URL of an endpoint that answers every request with
    ``status`` (the local endpoint sends a 503 only while it stops)."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    servers = []

    def start(status: int) -> str:
        class Refuse(BaseHTTPRequestHandler):
            def _refuse(self):
                self.send_response(status)
                self.end_headers()
            do_GET = do_POST = _refuse

            def log_message(self, *args):
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Refuse)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}/v2"

    yield start
    for server in servers:
        server.shutdown()


@pytest.fixture
def broken_endpoint(refusing_endpoint):
    return refusing_endpoint(503)


def test_a_cancelled_job_stays_cancelled_when_its_attempt_ends_late(job, client, auth, app, broken_endpoint):
    app.config["RUNPOD_ENDPOINT_BASE_URL"] = broken_endpoint                 # /cancel fails
    job_id = job.id
    r = client.post(f"/api/training/jobs/{job_id}/cancel", headers=auth)
    assert r.get_json()["status"] == "cancel_requested"
    from control.tasks import cancel
    cancel(job_id)                    # a task: it ends with its own session, so read the job anew
    job = db.session.get(TrainingJob, job_id)
    assert job.status == "cancelled" and job.current_attempt.ended_at is not None
    finish_attempt(job, job.current_attempt, "FAILED", {"status": "FAILED", "error": "worker lost"})
    db.session.refresh(job)
    assert job.status == "cancelled" and job.checkpoint_recovery_count == 0 and _scheduled_dispatches() == []


def test_a_non_recoverable_error_known_only_by_its_text_fails_at_once(job):
    finish_attempt(job, job.current_attempt, "FAILED",
                   {"status": "FAILED", "error": "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2 GiB"})
    db.session.refresh(job)
    assert (job.status, job.error_type, job.checkpoint_recovery_count) == ("failed", "out_of_memory", 0)
    assert job.error_adjustment == {"batch_size": 2, "gradient_accumulation_steps": 8}   # balanced: 4 x 4
    assert "batch_size=4" in job.error_message


def test_a_new_attempt_is_held_to_the_training_pace_only_once_it_trains(job, app):
    """The job's stage is still the lost attempt's ``training``: the new attempt, loading
    the model and its checkpoint, gets the stage limit until it trains a step itself."""
    from control.services.recovery import stall_limit_s
    app.config.update(STALL_MIN_SECONDS=3, STALL_STEP_FACTOR=10, STALL_STAGE_SECONDS=120)
    s = EventStream(job.id, 1)
    ingest(job, job.current_attempt, [s.make("stage", stage="training")] + [
        s.make("metrics", step=step, total_steps=60, epoch=0.1, loss=2.0, lr=1e-4, elapsed_seconds=0.5 * step)
        for step in range(1, 6)])
    assert stall_limit_s(job, job.current_attempt, app.config) == 5.0          # 10 steps of 0.5 s
    second = JobAttempt(job=job, number=2, runpod_job_id="rp-2", runpod_status="IN_PROGRESS")
    db.session.add(second)
    db.session.commit()
    assert job.current_stage == "training"
    assert stall_limit_s(job, second, app.config) == 120.0                    # still starting
    s2 = EventStream(job.id, 2)
    ingest(job, second, [s2.make("metrics", step=6, total_steps=60, epoch=0.1, loss=2.0, lr=1e-4,
                                 elapsed_seconds=1.2)])
    assert stall_limit_s(job, second, app.config) == 3.0                       # 0.2 s a step: the floor


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


def test_a_refused_dispatch_spends_no_recovery_and_is_tried_again_until_the_provisioning_timeout(
        job, app, broken_endpoint):
    """The endpoint answers 503 to /run: no worker ran anything, so it is no interruption."""
    from control.models import utcnow
    from control.tasks import dispatch
    app.config.update(RUNPOD_ENDPOINT_BASE_URL=broken_endpoint, PROVISIONING_TIMEOUT_SECONDS=3600)
    job.current_attempt.ended_at, job.current_attempt.outcome = utcnow(), "lost"
    job.status = "recovering"
    db.session.commit()
    job_id = job.id
    assert dispatch(job_id) is None
    job = db.session.get(TrainingJob, job_id)
    refused = job.current_attempt
    assert (job.status, job.checkpoint_recovery_count) == ("queued", 0)
    assert (refused.number, refused.outcome, refused.runpod_job_id) == (2, "refused", None)
    assert "503" in refused.error["message"] and "no worker ran the job" in refused.error["cause"]
    assert "PROVISIONING_TIMEOUT_SECONDS" in refused.error["fix"]
    assert [i["attempt"] for i in job.to_dict()["interruptions"]] == [1]
    assert len(_scheduled_dispatches()) == 1
    app.config["PROVISIONING_TIMEOUT_SECONDS"] = 0          # refused for longer than that: it fails
    dispatch(job_id)
    job = db.session.get(TrainingJob, job_id)
    assert (job.status, job.checkpoint_recovery_count) == ("failed", 0)
    assert "could not be dispatched in 2 tries" in job.error_message and job.error_fix
    assert job.error_user is False


def test_a_dispatch_refused_for_its_api_key_fails_at_once_and_says_which_setting(job, app):
    """An endpoint with another key answers 401, as RunPod does; the SDK raises its own
    RuntimeError for it."""
    from control.local_endpoint import LocalEndpoint
    from control.models import utcnow
    from control.tasks import dispatch
    job.current_attempt.ended_at, job.current_attempt.outcome = utcnow(), "lost"
    job.status = "recovering"
    db.session.commit()
    job_id = job.id
    with LocalEndpoint(workers=0, api_key="the-right-key") as ep:
        app.config.update(RUNPOD_ENDPOINT_BASE_URL=ep.base_url, RUNPOD_ENDPOINT_ID=ep.endpoint_id,
                          RUNPOD_API_KEY="a-wrong-key", PROVISIONING_TIMEOUT_SECONDS=3600)
        dispatch(job_id)
        assert ep.health()["jobs"]["inQueue"] == 0
    job = db.session.get(TrainingJob, job_id)
    assert (job.status, job.error_type, job.checkpoint_recovery_count) == ("failed", "gpu_provisioning", 0)
    assert "RUNPOD_API_KEY" in job.error_fix and _scheduled_dispatches() == []
