"""Stopping for money, end to end on the running system: a job whose projected cost passes
its ``max_cost_usd`` checkpoints and stops as ``spend_cap``, and a retry continues from that
checkpoint with a new cap; when the month's spend reaches the budget, a running job
checkpoints and stops as ``budget_exceeded``. The local CPU worker is priced here (``GPU_PRICES``) so that a
few seconds of training cost dollars."""
from __future__ import annotations

import time

import httpx
import pytest

pytestmark = pytest.mark.slow

SETTINGS = {"batch_size": 2, "gradient_accumulation_steps": 1, "max_seq_length": 512}


def _wait_final(http, job_id, timeout_s=240) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        job = http.get(f"/training/jobs/{job_id}").json()
        if job["status"] in ("completed", "failed", "cancelled"):
            return job
        assert time.monotonic() < deadline, f"{job_id} still {job['status']}"
        time.sleep(0.3)


def _priced_system(live_system, make_user, small_sample, tiny_model_dir):
    """The local CPU worker at $0.10 a second, no approval to wait for, a budget the tiny
    model's estimate fits in, a user's and an admin's API clients, and a 400-step job's body."""
    live_system.app.config.update(GPU_PRICES={"LOCAL_CPU": {"spot_per_hour": 360.0}}, APPROVAL_THRESHOLD_USD=1e9)
    _, auth = make_user()
    _, admin = make_user("boss@example.com", "admin")
    http = httpx.Client(base_url=f"{live_system.url}/api", headers=auth, timeout=30)
    boss = httpx.Client(base_url=f"{live_system.url}/api", headers=admin, timeout=30)
    assert boss.put("/training/budget/monthly", json={"limit_usd": 900_000}).status_code == 200
    file_id = http.post("/training-files?wait=true", files={"file": ("s.json", small_sample, "application/json")}).json()["id"]
    body = {"training_file_id": file_id, "preset": "balanced", "base_model": tiny_model_dir, "method": "lora",
            "gpu": {"type": "LOCAL_CPU", "pricing": "spot"}, "start": True, "evaluation": {"size": "perplexity"},
            "hyperparameters": {**SETTINGS, "num_epochs": 50, "max_steps": 400, "checkpoint_every_steps": 1000}}
    return http, boss, body


def test_a_spend_cap_stops_the_job_at_a_checkpoint_and_a_retry_continues_with_a_new_cap(
        live_system, make_user, small_sample, tiny_model_dir):
    http, _, body = _priced_system(live_system, make_user, small_sample, tiny_model_dir)
    r = http.post("/training/jobs", json={**body, "max_cost_usd": 1.5})
    assert r.status_code == 201, r.text
    first = r.json()
    assert first["max_cost_usd"] == 1.5 and first["configuration"]["gpu"]["price_per_hour"] == 360.0

    stopped = _wait_final(http, first["id"])
    assert stopped["status"] == "failed" and stopped["error_type"] == "spend_cap", stopped
    assert "passed its spend cap of $1.50" in stopped["error_message"]
    assert stopped["error_user"] is True and "higher max_cost_usd" in stopped["error_fix"]
    step = stopped["last_checkpoint_step"]
    assert step and step < 400                                    # stopped well before the end
    events = http.get(f"/training/jobs/{first['id']}/events").json()["data"]
    assert any(e["event"]["type"] == "checkpoint" and e["event"]["reason"] == "stop" for e in events)
    assert any(e["event"]["type"] == "warning" and e["event"]["code"] == "spend_cap" for e in events)
    assert stopped["projected_cost_usd"] > 1.5

    r = http.post(f"/training/jobs/{first['id']}/retry", json={
        "from_checkpoint_step": step, "max_cost_usd": 500, "hyperparameters": {"max_steps": 3}, "start": True})
    assert r.status_code == 201, r.text
    second = r.json()
    assert {"field": "max_cost_usd", "from": 1.5, "to": 500.0, "why": "asked for"} in second["changes"]
    assert second["configuration"]["continue_from"] == {"job_id": first["id"], "step": step}
    done = _wait_final(http, second["id"])
    assert done["status"] == "completed", done


def test_a_running_job_stops_at_a_checkpoint_when_the_months_budget_is_reached(
        live_system, make_user, small_sample, tiny_model_dir):
    http, boss, body = _priced_system(live_system, make_user, small_sample, tiny_model_dir)
    r = http.post("/training/jobs", json=body)
    assert r.status_code == 201, r.text
    job_id = r.json()["id"]
    deadline = time.monotonic() + 120
    while (http.get(f"/training/jobs/{job_id}").json()["current_step"] or 0) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    # The admin lowers the budget under what the month has spent: the sweep stops the job.
    assert boss.put("/training/budget/monthly", json={"limit_usd": 0.5}).status_code == 200
    stopped = _wait_final(http, job_id)
    assert stopped["status"] == "failed" and stopped["error_type"] == "budget_exceeded", stopped
    assert stopped["last_checkpoint_step"] and stopped["last_checkpoint_step"] < 400
    events = http.get(f"/training/jobs/{job_id}/events?type=checkpoint").json()["data"]
    assert any(e["event"]["reason"] == "stop" for e in events)
    budget = boss.get("/training/budget/monthly").json()
    assert budget["spent_usd"] >= 0.5 and budget["remaining_usd"] < 0
