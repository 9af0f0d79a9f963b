"""Checkpoint now, retry with the failure's adjustment, and continuing from a finished
job's checkpoint, end to end on the running system."""
from __future__ import annotations

import time

import httpx
import pytest

from control.extensions import db
from control.models import MetricPoint, TrainingJob

pytestmark = pytest.mark.slow

SETTINGS = {"batch_size": 2, "gradient_accumulation_steps": 1, "max_seq_length": 512}


def _wait_step(http, job_id, step, timeout_s=120):
    deadline = time.monotonic() + timeout_s
    while (http.get(f"/training/jobs/{job_id}").json()["current_step"] or 0) < step:
        assert time.monotonic() < deadline, f"{job_id} did not reach step {step}"
        time.sleep(0.1)


def _wait_status(http, job_id, statuses, timeout_s=240):
    deadline = time.monotonic() + timeout_s
    while True:
        job = http.get(f"/training/jobs/{job_id}").json()
        if job["status"] in statuses:
            return job
        assert job["status"] not in ("failed", "cancelled") or job["status"] in statuses, job
        assert time.monotonic() < deadline, f"{job_id} still {job['status']}"
        time.sleep(0.3)


def _first_loss(job_id) -> float:
    db.session.remove()
    return db.session.scalar(db.select(MetricPoint.training_loss).where(
        MetricPoint.training_job_id == job_id, MetricPoint.step == 1))


def test_checkpoint_now_retry_with_the_fix_and_continue_from_a_checkpoint(
        live_system, make_user, small_sample, tiny_model_dir):
    _, auth = make_user()
    http = httpx.Client(base_url=f"{live_system.url}/api", headers=auth, timeout=30)
    file_id = http.post("/training-files?wait=true", files={"file": ("s.json", small_sample, "application/json")}).json()["id"]
    body = {"training_file_id": file_id, "preset": "balanced", "base_model": tiny_model_dir, "method": "lora",
            "gpu": {"type": "LOCAL_CPU", "pricing": "spot"}, "start": True,
            "hyperparameters": {**SETTINGS, "num_epochs": 10, "max_steps": 40, "checkpoint_every_steps": 25},
            "evaluation": {"size": "perplexity"}}
    first = http.post("/training/jobs", json=body).json()["id"]

    # Checkpoint now: asked while it trains, taken at a step between the interval ones.
    assert http.post(f"/training/jobs/{first}/checkpoint").status_code == 409     # not training yet
    _wait_status(http, first, ("training",))
    _wait_step(http, first, 3)             # well past the start, well before the interval checkpoint at 25
    r = http.post(f"/training/jobs/{first}/checkpoint")
    assert r.status_code == 202 and r.json()["checkpoint_requested_at"]
    _wait_status(http, first, ("completed",))
    checkpoints = http.get(f"/training/jobs/{first}/events?type=checkpoint").json()["data"]
    requested = [e["event"] for e in checkpoints if e["event"]["reason"] == "requested"]
    assert len(requested) == 1 and requested[0]["step"] % 25 != 0, checkpoints
    assert http.get(f"/training/jobs/{first}").json()["checkpoint_requested_at"] is None

    # Continue from one of its checkpoints in a new job: the adapter carries on learning.
    kept = [c["step"] for c in http.get(f"/training/jobs/{first}/checkpoints").json()["data"]]
    assert kept[0] == 40 and len(kept) == 2
    r = http.post(f"/training/jobs/{first}/retry", json={
        "from_checkpoint_step": 40, "hyperparameters": {"num_epochs": 1, "max_steps": 3}, "start": True})
    assert r.status_code == 201, r.text
    second = r.json()
    assert second["configuration"]["continue_from"] == {"job_id": first, "step": 40}
    assert {c["field"] for c in second["changes"]} == {"num_epochs", "max_steps", "continue_from"}
    _wait_status(http, second["id"], ("completed",))
    stages = http.get(f"/training/jobs/{second['id']}/events?type=stage").json()["data"]
    assert any("started from the adapter of" in (e["event"].get("message") or "") for e in stages)
    assert _first_loss(second["id"]) < _first_loss(first)
    bad = http.post(f"/training/jobs/{first}/retry", json={"from_checkpoint_step": 7})
    assert bad.status_code == 400 and "has no checkpoint of step 7" in bad.json()["error"]["message"]
    bad = http.post(f"/training/jobs/{first}/retry", json={
        "from_checkpoint_step": 40, "hyperparameters": {"lora_r": 4}})
    assert bad.status_code == 400 and "lora_r: 16 → 4" in bad.json()["error"]["message"]

    # Retry a job that ran out of GPU memory: the suggested adjustment is applied and listed.
    from control.services.lifecycle import fail
    from shared.failures import out_of_memory
    oom = http.post("/training/jobs", json={**body, "start": False,
                                            "hyperparameters": {**body["hyperparameters"], "batch_size": 4,
                                                                "gradient_accumulation_steps": 2, "max_steps": 4}}).json()["id"]
    db.session.remove()
    job = db.session.get(TrainingJob, oom)
    fail(job, out_of_memory(job.configuration["hyperparameters"], 80, "CUDA out of memory"))
    db.session.commit()
    r = http.post(f"/training/jobs/{oom}/retry", json={"start": True})
    assert r.status_code == 201, r.text
    retried = r.json()
    assert [(c["field"], c["from"], c["to"]) for c in retried["changes"]] == [
        ("batch_size", 4, 2), ("gradient_accumulation_steps", 2, 4)]
    assert retried["configuration"]["hyperparameters"]["batch_size"] == 2 and retried["retried_from_id"] == oom
    assert _wait_status(http, retried["id"], ("completed",))["status"] == "completed"
    assert http.get(f"/training/jobs/{oom}").json()["retry_count"] == 1
    assert http.post(f"/training/jobs/{retried['id']}/retry", json={}).status_code == 201   # run again
