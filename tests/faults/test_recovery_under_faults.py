"""Faults injected into the running system while a job trains: its GPU worker SIGKILLed at
random steps and SIGTERMed; the RQ worker that monitors it killed; Redis restarted empty;
every Postgres connection dropped; object storage gone for a while. Each job still ends
``completed``, with the adapter an uninterrupted run of the same seed trains, every metric
step exactly once, and its interruptions recorded."""
from __future__ import annotations

import json
import os
import random
import signal
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import psycopg
import pytest
import torch

from control.extensions import db
from control.local_endpoint.job import FAILED, FINAL_STATES
from control.models import JobAttempt, MetricPoint, TrainingJob

pytestmark = pytest.mark.slow

STEPS = 60
SETTINGS = {"num_epochs": 10, "max_steps": STEPS, "batch_size": 2, "gradient_accumulation_steps": 1,
            "max_seq_length": 512, "checkpoint_every_steps": 5}


EVALUATION = {"size": "perplexity"}      # the faults are in training: no answers generated
# What is left of a job once its faults are over: the rest of its 60 steps, its evaluation and
# report. About a minute and a half with another xdist worker loading both cores; a deadline only.
FINISH_S = 600


def _start_job(system, make_user, small_sample, tiny_model_dir, **settings) -> str:
    _, auth = make_user()
    http = httpx.Client(base_url=f"{system.url}/api", headers=auth, timeout=30)
    file_id = http.post("/training-files?wait=true", files={"file": ("s.json", small_sample, "application/json")}).json()["id"]
    r = http.post("/training/jobs", json={
        "training_file_id": file_id, "preset": "balanced", "base_model": tiny_model_dir, "method": "lora",
        "gpu": {"type": "LOCAL_CPU", "pricing": "spot"}, "hyperparameters": {**SETTINGS, **settings},
        "evaluation": EVALUATION, "start": True})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def _job(job_id) -> TrainingJob:
    db.session.remove()
    return db.session.get(TrainingJob, job_id)


def _wait(what: str, check, system, timeout_s: float = 240.0):
    """Until ``check()`` is truthy; fails at once if any job of the test failed."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        failed = db.session.scalars(db.select(TrainingJob).where(TrainingJob.status == "failed")).first()
        assert failed is None, f"job {failed.id} failed: {failed.error_type}: {failed.error_message}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}; the RQ worker:\n{system.worker.tail(30)}"
        time.sleep(0.2)


def _training(job_id, attempt: int | None = None, past_step: int = 0):
    """The job's current attempt number once it trains past ``past_step`` (in ``attempt``)."""
    def check():
        job = _job(job_id)
        current = job.current_attempt
        if (job.status == "training" and current is not None and current.ended_at is None
                and (attempt is None or current.number == attempt)
                and (job.current_step or 0) > past_step and (current.resumed_from_step or 0) < job.current_step):
            return current.number
        return None
    return check


def _busy_worker_pid(system) -> int:
    busy = [w for w in system.endpoint.workers if w["jobId"] and w["alive"]]
    assert len(busy) == 1, system.endpoint.workers
    return busy[0]["pid"]


def _new_step_after(job_id, attempt: int):
    def check():
        db.session.remove()
        return db.session.scalar(db.select(db.func.min(MetricPoint.recorded_at)).where(
            MetricPoint.training_job_id == job_id, MetricPoint.attempt > attempt))
    return check


def _assert_like_an_uninterrupted_run(job_id, reference_adapter, storage_root: str):
    from safetensors.torch import load_file
    job = _job(job_id)
    assert job.status == "completed", (job.status, job.error_message)
    steps = list(db.session.scalars(db.select(MetricPoint.step).where(MetricPoint.training_job_id == job_id)
                                    .order_by(MetricPoint.step)))
    assert steps == list(range(1, STEPS + 1))                       # none twice, none missing
    mine = load_file(str(Path(storage_root) / job.storage_prefix / "adapter" / "adapter_model.safetensors"))
    theirs = reference_adapter(job)
    assert mine.keys() == theirs.keys()
    different = [k for k in mine if not torch.equal(mine[k], theirs[k])]
    assert not different, f"{len(different)} tensors differ from an uninterrupted run, e.g. {different[:3]}"
    return job


def test_a_job_survives_its_worker_killed_three_times_and_stopped_once(
        live_system, make_user, small_sample, tiny_model_dir, reference_adapter):
    job_id = _start_job(live_system, make_user, small_sample, tiny_model_dir)
    rng = random.Random(int(os.environ.get("FAULT_SEED", "7")))
    recovery_s = []
    for _ in range(3):
        start = _job(job_id).current_step or 0
        attempt = _wait("training", _training(job_id, past_step=start + rng.randint(1, 4)), live_system)
        os.kill(_busy_worker_pid(live_system), signal.SIGKILL)       # a spot GPU reclaimed
        killed = time.monotonic()
        _wait("training again on a new attempt", _new_step_after(job_id, attempt), live_system)
        recovery_s.append(time.monotonic() - killed)
    start = _job(job_id).current_step or 0
    attempt = _wait("training", _training(job_id, past_step=start + 2), live_system)
    os.kill(_busy_worker_pid(live_system), signal.SIGTERM)          # a planned shutdown
    _wait("completed", lambda: _job(job_id).status == "completed", live_system, timeout_s=FINISH_S)

    job = _assert_like_an_uninterrupted_run(job_id, reference_adapter,
                                            live_system.app.config["STORAGE_ENV"]["STORAGE_LOCAL_ROOT"])
    interruptions = job.to_dict()["interruptions"]
    assert [i["outcome"] for i in interruptions] == ["lost", "lost", "lost", "interrupted"]
    assert all(i["at"] and i["last_step"] and i["steps_lost"] is not None for i in interruptions)
    assert interruptions[-1]["steps_lost"] == 0                     # SIGTERM: it checkpointed first
    assert all("worker lost" in i["reason"] for i in interruptions[:3])
    assert job.checkpoint_recovery_count == 4 and len(job.attempts) == 5
    resumed = [a.resumed_from_step for a in job.attempts[1:]]
    assert all((step or 0) % 5 == 0 for step in resumed[:-1]), resumed   # interval checkpoints (or none yet)
    assert resumed[-1] == interruptions[-1]["last_step"]           # from SIGTERM's own checkpoint
    if os.environ.get("RECOVERY_TIMINGS_FILE"):
        Path(os.environ["RECOVERY_TIMINGS_FILE"]).write_text(json.dumps({
            "kill_to_next_step_s": recovery_s, "steps_lost": [i["steps_lost"] for i in interruptions]}))


def _drop_postgres_connections(app) -> int:
    """Terminate every other connection to the test database, as a failover would."""
    db.session.remove()
    url = app.config["SQLALCHEMY_DATABASE_URI"].replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                            "WHERE datname = current_database() AND pid <> pg_backend_pid()").fetchall()
    db.engine.dispose()
    return len(rows)


@contextmanager
def _storage_down(root: str):
    """The store's root is gone (an unmounted volume) inside the block, then back as it was."""
    root_path = Path(root)
    away = root_path.with_name(root_path.name + ".away")
    root_path.rename(away)
    root_path.write_text("storage is down")
    try:
        yield
    finally:
        root_path.unlink()
        away.rename(root_path)


def _endpoint_status(system, runpod_job_id: str) -> str:
    return system.endpoint.store.status(runpod_job_id)["status"]


def test_a_job_survives_storage_its_monitor_redis_and_postgres_failing(
        live_system, redis_server, make_user, small_sample, tiny_model_dir, reference_adapter):
    app = live_system.app
    root = app.config["STORAGE_ENV"]["STORAGE_LOCAL_ROOT"]
    job_id = _start_job(live_system, make_user, small_sample, tiny_model_dir)

    attempt = _wait("training", _training(job_id, past_step=3), live_system)
    runpod_job_id = _job(job_id).current_attempt.runpod_job_id
    # Down until the attempt gives up on it: its next checkpoint (every 5 steps) finds storage
    # gone for longer than the worker's patience (2 s). Not a fixed outage: on a loaded CPU
    # 5 steps take 10 s or more, and a shorter outage than that may fall between checkpoints.
    with _storage_down(root):
        _wait("the attempt failing on storage",
              lambda: _endpoint_status(live_system, runpod_job_id) in FINAL_STATES, live_system)
    ended = live_system.endpoint.store.status(runpod_job_id)
    assert ended["status"] == FAILED, ended                        # the outage failed it
    _wait("training on a new attempt", _new_step_after(job_id, attempt), live_system)

    live_system.worker.kill()                                      # the monitor's worker dies...
    live_system.worker.start()                                     # ...and another takes over
    redis_server.restart(down_s=2)                                 # every queued task is gone
    assert _drop_postgres_connections(app) >= 1                    # and every database connection

    _wait("completed", lambda: _job(job_id).status == "completed", live_system, timeout_s=FINISH_S)
    job = _assert_like_an_uninterrupted_run(job_id, reference_adapter, root)
    storage_failures = [a for a in job.attempts if a.error and a.error.get("type") == "storage"]
    assert storage_failures, [a.to_dict() for a in job.attempts]     # the outage cost an attempt
    interruptions = job.to_dict()["interruptions"]
    assert all(i["steps_lost"] is not None for i in interruptions)
    # One recovery per lost attempt, never two: the control-plane faults lost no attempt. A
    # dispatch refused while storage was down is tried again and is no interruption.
    ran = [a for a in job.attempts if a.outcome != "refused"]
    assert job.checkpoint_recovery_count == len(interruptions) == len(ran) - 1 <= 4, \
        [a.to_dict() for a in job.attempts]
    assert all(a.error["type"] == "storage" for a in job.attempts[:-1])
    assert redis_server.restarts == 1 and live_system.worker.starts == 2
    live_system.worker.assert_alive()


def test_a_hung_worker_is_marked_stalled_then_replaced(
        live_system, make_user, small_sample, tiny_model_dir, reference_adapter):
    """SIGSTOP freezes the handler; the SDK's heartbeat process keeps pinging, so only the
    silence of the stream tells: stalled first, then its attempt cancelled and replaced."""
    job_id = _start_job(live_system, make_user, small_sample, tiny_model_dir)
    attempt = _wait("training", _training(job_id, past_step=6), live_system)
    frozen = _busy_worker_pid(live_system)
    os.kill(frozen, signal.SIGSTOP)
    try:
        stalled = _wait("stalled", lambda: _job(job_id).status == "stalled" and _job(job_id), live_system, 120)
        assert stalled.stalled_at is not None and stalled.current_attempt.number == attempt
        _wait("training again on a new attempt", _new_step_after(job_id, attempt), live_system, 120)
    finally:
        try:
            os.kill(frozen, signal.SIGCONT)
        except ProcessLookupError:
            pass
    _wait("completed", lambda: _job(job_id).status == "completed", live_system, timeout_s=FINISH_S)
    job = _assert_like_an_uninterrupted_run(job_id, reference_adapter,
                                            live_system.app.config["STORAGE_ENV"]["STORAGE_LOCAL_ROOT"])
    [interruption] = job.to_dict()["interruptions"]
    assert interruption["outcome"] == "stalled" and "no event for" in interruption["reason"]
    assert job.stalled_at is None
