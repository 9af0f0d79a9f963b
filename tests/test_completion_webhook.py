"""RunPod's completion webhook, ``POST /api/training/webhook/<attempt token>``.

Unit level, on Postgres and SQLite: an attempt set up by hand, and RunPod's HTTP API played
by a stand-in on a localhost port (the runpod SDK's own client reads its stream and status).
A valid call settles the attempt at once; repeated, early and late calls are harmless; a
bad token or another job's id is a 404 that changes nothing.

And once for real, on Postgres: a job trains on the local endpoint with a real runpod worker
and a real RQ worker process, the monitor reading only every 10 minutes; the local endpoint's
completion webhook reaches the app over HTTP and the job is completed seconds after the
handler's ``completed``. ``benchmarks/completion_webhook.py`` runs that test with the
webhook on and off (``COMPLETION_WEBHOOK_BENCH``, ``COMPLETION_BENCH_INTERVAL``) and prints
the times.
"""
from __future__ import annotations

import json
import os
import threading
import time
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from werkzeug.wrappers import Request, Response

from control.extensions import db
from control.models import JobAttempt, TrainingEvent, TrainingJob
from control.services import attempt_tokens, monitoring
from shared.events import EventStream
from tests.job_events import events_of
from tests.live_system import RQWorkerProcess, live_app, live_endpoint, live_server  # noqa: F401
from tests.local_server import LocalServer


class RunPodStandIn(LocalServer):
    """RunPod's ``/v2/<endpoint>/stream/<id>`` and ``/status/<id>``: each stream read takes
    the next scripted ``(status, outputs)`` (then the last status with nothing new), or
    answers ``fail_status``. Records each path it was asked."""

    name = "runpod-stand-in"

    def __init__(self):
        self.reads: list[tuple[str, list]] = []
        self.status_body: dict = {}
        self.fail_status: int | None = None
        self.paths: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, environ, start_response):
        request = Request(environ)
        with self._lock:
            self.paths.append(request.path)
            if self.fail_status:
                reply = Response("unavailable", status=self.fail_status)
            elif "/stream/" in request.path:
                status, outputs = self.reads.pop(0) if self.reads else ("IN_PROGRESS", [])
                if not self.reads:
                    self.reads.append((status, []))         # then: nothing new
                reply = Response(json.dumps({"id": "rp-1", "status": status,
                                             "stream": [{"output": o} for o in outputs]}),
                                 mimetype="application/json")
            else:
                reply = Response(json.dumps(self.status_body), mimetype="application/json")
        return reply(environ, start_response)


@pytest.fixture(scope="module")
def stand_in():
    with RunPodStandIn() as server:
        yield server


@pytest.fixture
def runpod(app, stand_in):
    stand_in.reads, stand_in.paths, stand_in.fail_status, stand_in.status_body = [], [], None, {}
    app.config["RUNPOD_ENDPOINT_BASE_URL"] = stand_in.address + "/v2"
    return stand_in


@pytest.fixture
def token(job) -> str:
    attempt = job.attempts[0]
    value = attempt_tokens.issue(attempt)
    db.session.commit()
    return value


def _call(client, token, body):
    return client.post(f"/api/training/webhook/{token}", json=body)


def _end_events(job_id):
    s = EventStream(job_id, 1)
    s.seq = 100
    return [s.make("stage", stage="finalizing"), s.make("completed", summary={"steps": 3})]


def _fresh(model, ident):
    db.session.rollback()
    return db.session.get(model, ident, populate_existing=True)


def test_a_finished_attempt_is_settled_by_the_call_and_again_is_harmless(app, client, job, token, runpod):
    runpod.reads = [("COMPLETED", events_of(job.id) + _end_events(job.id))]
    body = {"id": "rp-1", "status": "COMPLETED", "executionTime": 61000, "delayTime": 2000,
            "output": {"ok": True}}
    r = _call(client, token, body)                             # no Authorization header at all
    assert r.status_code == 200 and r.get_json() == {"outcome": "settled"}
    job, attempt = _fresh(TrainingJob, job.id), _fresh(JobAttempt, job.attempts[0].id)
    assert job.status == "completed" and job.completed_at is not None and job.current_step == 3
    assert attempt.ended_at is not None and attempt.outcome == "completed" and attempt.runpod_status == "COMPLETED"
    assert not any("/status/" in p for p in runpod.paths)     # the body said what the status says
    reads, stored = len(runpod.paths), db.session.query(TrainingEvent).count()

    for again in (body, {"id": "rp-1", "status": "IN_PROGRESS"}):   # repeated, out of order
        r = _call(client, token, again)
        assert r.status_code == 200 and r.get_json() == {"outcome": "already settled"}
    assert len(runpod.paths) == reads and db.session.query(TrainingEvent).count() == stored
    assert _fresh(TrainingJob, job.id).completed_at == job.completed_at


def test_a_call_before_the_end_stores_what_came_and_the_monitor_carries_on(app, client, job, token, runpod):
    runpod.reads = [("IN_PROGRESS", events_of(job.id))]
    r = _call(client, token, {"id": "rp-1", "status": "IN_PROGRESS"})
    assert r.status_code == 200 and r.get_json() == {"outcome": "not final yet"}
    job = _fresh(TrainingJob, job.id)
    assert job.status == "training" and job.current_step == 3 and job.attempts[0].ended_at is None

    runpod.reads = [("COMPLETED", _end_events(job.id)), ("COMPLETED", [])]
    monitoring.monitor(job.attempts[0].id)                     # its next read: the rest
    monitoring.monitor(job.attempts[0].id)                     # drained: settled
    job = _fresh(TrainingJob, job.id)
    assert job.status == "completed" and job.attempts[0].ended_at is not None
    r = _call(client, token, {"id": "rp-1", "status": "COMPLETED"})    # RunPod's call, late
    assert r.get_json() == {"outcome": "already settled"}
    assert db.session.query(TrainingEvent).filter_by(type="completed").count() == 1


def test_a_lost_worker_is_recovered_at_once(app, client, job, token, runpod):
    runpod.reads = [("FAILED", events_of(job.id))]
    r = _call(client, token, {"id": "rp-1", "status": "FAILED", "error": "worker lost: killed by SIGKILL"})
    assert r.get_json() == {"outcome": "settled"}
    job = _fresh(TrainingJob, job.id)
    assert job.status == "recovering" and job.attempts[0].outcome == "lost"
    assert job.attempts[0].error is None or "worker lost" in json.dumps(job.attempts[0].error)


def test_the_endpoints_status_counts_not_the_bodys(app, client, job, token, runpod):
    runpod.reads = [("IN_PROGRESS", [])]
    r = _call(client, token, {"id": "rp-1", "status": "COMPLETED"})
    assert r.get_json() == {"outcome": "not final yet"}
    assert _fresh(TrainingJob, job.id).attempts[0].ended_at is None


def test_a_bad_token_or_another_jobs_id_is_a_404_that_changes_nothing(app, client, job, token, runpod):
    attempt_id = job.attempts[0].id
    answers = [_call(client, t, {"id": "rp-1", "status": "COMPLETED"})
               for t in ("nonsense", f"{attempt_id}.wrong-secret", "att_unknown.secret", "x" * 300)]
    answers.append(_call(client, token, {"id": "rp-2", "status": "COMPLETED"}))
    assert {r.status_code for r in answers} == {404}
    assert len({r.get_data() for r in answers}) == 1           # the same 404 whatever was wrong
    assert runpod.paths == [] and _fresh(JobAttempt, attempt_id).ended_at is None
    r = _call(client, token, {"status": "COMPLETED"})          # a valid token, a body without its id
    assert r.status_code == 400 and r.get_json()["error"]["field"] == "id"


def test_an_endpoint_that_cannot_be_read_leaves_it_to_the_monitor(app, client, job, token, runpod):
    runpod.fail_status = 503
    r = _call(client, token, {"id": "rp-1", "status": "COMPLETED"})
    assert r.status_code == 200 and r.get_json() == {"outcome": "left to the monitor"}
    assert _fresh(JobAttempt, job.attempts[0].id).ended_at is None


# ---------------------------------------------------------------------------- the real thing
WEBHOOK_ON = os.environ.get("COMPLETION_WEBHOOK_BENCH", "on") != "off"
# The suite's run: the monitor reads once, at dispatch, and not again for 10 minutes, so only
# the webhook can complete the job in time. The benchmark sets both.
MONITOR_INTERVAL_S = float(os.environ.get("COMPLETION_BENCH_INTERVAL", 600))


@pytest.fixture
def worker(live_app, live_server, live_endpoint, tmp_path, monkeypatch, request):
    """The RQ worker process, dispatching with the completion webhook pointed at the live app."""
    live_app.config.update(MONITOR_INTERVAL_SECONDS=MONITOR_INTERVAL_S, PUBLIC_BASE_URL=live_server,
                           COMPLETION_WEBHOOK=WEBHOOK_ON)
    monkeypatch.setenv("PUBLIC_BASE_URL", live_server)
    monkeypatch.setenv("COMPLETION_WEBHOOK", "1" if WEBHOOK_ON else "0")
    proc = RQWorkerProcess(live_app, tmp_path / "worker-data", tmp_path / "rq-worker.log").start()
    yield proc
    if getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed:
        print(f"\n----- RQ worker log (tail) -----\n{proc.tail()}")
    proc.stop()


@pytest.mark.slow
@pytest.mark.parametrize("app", ["postgres"], indirect=True)
def test_a_job_on_the_local_endpoint_is_completed_by_its_webhook_not_the_monitor(
        app, client, auth, upload, small_sample, tiny_model_dir, worker, live_server):
    file_id = upload(small_sample, "sample.json").get_json()["id"]
    r = client.post("/api/training/jobs", headers=auth, json={
        "training_file_id": file_id, "base_model": tiny_model_dir, "method": "lora", "start": True,
        "gpu": {"type": "LOCAL_CPU", "pricing": "on_demand"}, "evaluation": {"max_new_tokens": 8},
        "hyperparameters": {"num_epochs": 1, "max_steps": 3, "batch_size": 2,
                            "gradient_accumulation_steps": 1, "max_seq_length": 512}})
    assert r.status_code == 201, r.get_json()
    job_id = r.get_json()["id"]
    deadline = time.monotonic() + 240
    # The job row completes when its completed event is stored; the attempt ends just after it.
    while ((job := _fresh(TrainingJob, job_id)).status not in ("completed", "failed")
           or job.attempts[0].ended_at is None):
        assert time.monotonic() < deadline, f"still {job.status}, attempt ended at {job.attempts[0].ended_at}"
        worker.assert_alive()
        time.sleep(0.2)
    assert job.status == "completed", (job.error_type, job.error_message)
    completed = db.session.query(TrainingEvent).filter_by(training_job_id=job_id, type="completed").one()
    attempt = job.attempts[0]
    completed_ts = datetime.fromisoformat(completed.ts.replace("Z", "+00:00"))     # the handler's clock
    lag_s = (job.completed_at - completed_ts).total_seconds()
    if os.environ.get("COMPLETION_TIMINGS_FILE"):
        Path(os.environ["COMPLETION_TIMINGS_FILE"]).write_text(json.dumps(
            {"webhook": WEBHOOK_ON, "monitor_interval_s": MONITOR_INTERVAL_S, "completed_to_row_s": lag_s}))
    if not WEBHOOK_ON:
        return
    # No monitor read came after the handler's end: the webhook settled it, well inside the interval.
    assert attempt.monitored_at < completed_ts and attempt.ended_at is not None
    assert 0 <= lag_s < min(10, MONITOR_INTERVAL_S / 2), lag_s

    # RunPod calling again (a new token for the test to know: the first was only in the URL).
    token = attempt_tokens.issue(attempt)
    db.session.commit()
    stored = db.session.query(TrainingEvent).filter_by(training_job_id=job_id).count()
    again = httpx.post(f"{live_server}/api/training/webhook/{token}",
                       json={"id": attempt.runpod_job_id, "status": "COMPLETED"})
    assert again.status_code == 200 and again.json() == {"outcome": "already settled"}
    bad = httpx.post(f"{live_server}/api/training/webhook/{attempt.id}.forged",
                     json={"id": attempt.runpod_job_id, "status": "COMPLETED"})
    assert bad.status_code == 404
    assert db.session.query(TrainingEvent).filter_by(training_job_id=job_id).count() == stored
    assert _fresh(TrainingJob, job_id).completed_at == job.completed_at
