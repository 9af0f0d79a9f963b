"""Recovery: a lost, stalled or refused attempt is recorded and replaced, within its limits;
an attempt ends exactly once; a cancel stays a cancel."""
from __future__ import annotations

import pytest

from control.extensions import db
from control.models import JobAttempt, TrainingJob
from control.services.ingest import ingest
from control.services.monitoring import finish_attempt
from shared.events import EventStream
from tests.job_events import events_of


def _scheduled_dispatches():
    from control.services.queue import get_queue
    queue = get_queue()
    jobs = [queue.fetch_job(i) for i in queue.scheduled_job_registry.get_job_ids()] + queue.get_jobs()
    return [j for j in jobs if j and j.func_name.endswith("dispatch")]


def test_a_lost_attempt_is_recorded_and_a_new_one_dispatched(job, app):
    s = EventStream(job.id, 1)
    ingest(job, job.current_attempt, events_of(job.id, steps=2)
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
    ingest(job, job.current_attempt, events_of(job.id, steps=2))
    finish_attempt(job, job.current_attempt, "FAILED", {"status": "FAILED", "error": "worker lost"})
    db.session.refresh(job)
    assert job.status == "failed" and job.error_type == "worker_lost" and job.error_user is False
    assert "more than the limit of 0 recoveries" in job.error_message
    assert "MAX_RECOVERIES" in job.error_fix
    assert job.current_attempt.outcome == "lost" and _scheduled_dispatches() == []


def test_an_attempt_settled_twice_recovers_once(job, app):
    """A monitor and a second one the sweep enqueued again both see the attempt end."""
    ingest(job, job.current_attempt, events_of(job.id, steps=2))
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
