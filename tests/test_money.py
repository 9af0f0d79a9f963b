"""A job's money in the control plane: the GPU endpoint map, true costs from RunPod's billed
times, the projected final cost, cost alerts, the spend cap's stop request and the
calibration of estimates. (Budgets are tests/test_budgets.py; the spend cap end to end is
tests/faults/test_spend_cap.py.)"""
from __future__ import annotations

import json

import pytest
from werkzeug.wrappers import Request, Response

from control.extensions import db
from control.models import Notice, TrainingEvent, TrainingJob
from control.services import attempt_tokens, dispatch as dispatching, lifecycle, spend, stopping
from control.services.ingest import ingest
from control.services.monitoring import finish_attempt
from control.services.storage import get_storage
from shared.errors import ErrorType
from shared.events import EventStream
from tests.local_server import LocalServer


class RunPodStandIn(LocalServer):
    """RunPod's ``/run`` at the network edge: records which endpoint each job was sent to."""

    name = "runpod-stand-in"

    def __init__(self):
        self.runs: list[tuple[str, dict]] = []

    def __call__(self, environ, start_response):
        request = Request(environ)
        parts = request.path.strip("/").split("/")            # v2/<endpoint>/run
        if len(parts) == 3 and parts[2] == "run":
            self.runs.append((parts[1], request.get_json()))
            body = {"id": f"rp-{len(self.runs)}", "status": "IN_QUEUE"}
        else:
            body = {"id": parts[-1], "status": "IN_QUEUE", "stream": []}
        return Response(json.dumps(body), content_type="application/json")(environ, start_response)


def _priced(job: TrainingJob, price=7.99, estimate=1.0) -> TrainingJob:
    conf = dict(job.configuration)
    conf["gpu"] = {**conf["gpu"], "price_per_hour": price}
    job.configuration, job.cost_estimate = conf, estimate
    db.session.commit()
    return job


def _metrics(job, steps, total=100, seconds_a_step=10.0, start=0, attempt=1):
    s = EventStream(job.id, attempt, start_seq=start)
    out = [s.make("stage", stage="training")]
    for step in range(1, steps + 1):
        out.append(s.make("metrics", step=step, total_steps=total, epoch=step / total, loss=2.0, lr=1e-4,
                          tokens_per_second=1000.0, elapsed_seconds=step * seconds_a_step))
    return out


# ------------------------------------------------------------------ the endpoint map
def test_each_gpu_choice_goes_to_its_endpoint_and_an_unmapped_one_is_refused(app, client, auth, file_id):
    app.config["GPU_ENDPOINTS"] = {"H100_PCIE:spot": "ep-h100-spot", "H100_PCIE:on_demand": "ep-h100-od"}
    r = client.post("/api/training/jobs", headers=auth, json={
        "training_file_id": file_id, "gpu": {"type": "A100_80GB", "pricing": "spot"}})
    assert r.status_code == 400
    err = r.get_json()["error"]
    assert err["field"] == "gpu" and "no GPU endpoint serves A100_80GB at spot pricing" in err["message"]
    assert "H100_PCIE:spot, H100_PCIE:on_demand" in err["message"]
    assert db.session.query(TrainingJob).count() == 0

    with RunPodStandIn() as runpod:
        app.config["RUNPOD_ENDPOINT_BASE_URL"] = f"{runpod.address}/v2"
        app.config.update(PUBLIC_BASE_URL="https://console.example.com", COMPLETION_WEBHOOK=True)
        for tier, price in (("on_demand", 7.99), ("spot", 2.49)):
            body = client.post("/api/training/jobs", headers=auth, json={
                "training_file_id": file_id, "gpu": {"type": "H100_PCIE", "pricing": tier}, "start": True}).get_json()
            assert body["configuration"]["gpu"]["price_per_hour"] == price
            assert dispatching.dispatch(body["id"]) is not None
    assert [endpoint for endpoint, _ in runpod.runs] == ["ep-h100-od", "ep-h100-spot"]
    # RunPod is told where to call when the attempt ends, with a token only that attempt has.
    hook = runpod.runs[0][1]["webhook"]
    assert hook.startswith("https://console.example.com/api/training/webhook/")
    token = hook.rsplit("/", 1)[1]
    attempt = attempt_tokens.verify(token)
    assert attempt is not None and attempt.job.gpu_pricing_tier == "on_demand"
    assert attempt_tokens.verify(token[:-2] + "xx") is None and attempt_tokens.verify("att_x.y") is None
    assert token.split(".")[1] not in json.dumps(attempt.to_dict())      # stored as a hash only


def test_gpu_prices_are_configurable_and_priced_at_the_tier(app, client, auth, file_id):
    app.config["GPU_PRICES"] = {"H100_PCIE": {"spot_per_hour": 2.0, "on_demand_per_hour": 6.0}}
    est = client.get(f"/api/training/cost-estimate?training_file_id={file_id}&gpu_type=H100_PCIE&pricing=spot",
                     headers=auth).get_json()
    assert est.get("price_per_hour") == 2.0, est


# ------------------------------------------------------------------ true costs
def test_an_ended_attempt_costs_what_runpod_billed(job):
    _priced(job, price=3600.0)                       # $1 a second
    attempt = job.current_attempt
    ingest(job, attempt, _metrics(job, 2))
    finish_attempt(job, attempt, "COMPLETED", {"status": "COMPLETED", "executionTime": 90_500, "delayTime": 4_000})
    db.session.refresh(job)
    assert (attempt.execution_ms, attempt.delay_ms) == (90_500, 4_000)
    assert job.actual_cost == pytest.approx(90.5)    # executionTime, not the wall clock; delayTime unbilled


# ------------------------------------------------------------------ projection and alerts
def test_the_projected_cost_follows_the_measured_time_a_step(job):
    _priced(job, price=3600.0, estimate=10_000.0)
    ingest(job, job.current_attempt, _metrics(job, 10, total=100, seconds_a_step=10.0))
    db.session.refresh(job)
    # 90 steps left at 10 s a step at $1 a second, plus the evaluation, on top of the cost so far.
    assert job.projected_cost_usd >= job.actual_cost + 900
    assert job.cost_alerts == []


def test_cost_alerts_fire_at_80_and_95_percent_once_each_and_over_the_estimate(job):
    _priced(job, price=3600.0, estimate=100.0)
    attempt = job.current_attempt
    ingest(job, attempt, _metrics(job, 2))
    for spent, alerts in ((81.0, {"cost_80"}), (82.0, {"cost_80"}), (96.0, {"cost_80", "cost_95"})):
        attempt.execution_ms = int(spent * 1000)     # as billed so far
        db.session.commit()
        ingest(job, attempt, [EventStream(job.id, 1, start_seq=100 + int(spent)).make(
            "metrics", step=3, total_steps=100, epoch=0.03, loss=2.0, lr=1e-4, elapsed_seconds=30.0)])
        db.session.refresh(job)
        assert {a for a in job.cost_alerts if a.startswith("cost_")} == alerts
    assert "over_estimate" in job.cost_alerts          # heading for far more than $120 from the first steps
    kinds = [n.kind for n in db.session.query(Notice).filter_by(training_job_id=job.id).order_by(Notice.id)]
    assert kinds.count("job.cost_alert") == 2 and kinds.count("job.over_estimate") == 1
    warnings = [e.payload["code"] for e in db.session.query(TrainingEvent).filter_by(type="warning")]
    assert sorted(warnings) == ["cost_80", "cost_95", "over_estimate"]


# ------------------------------------------------------------------ the spend cap
def test_past_its_cap_a_running_job_is_asked_to_checkpoint_and_stop(job):
    _priced(job, price=3600.0, estimate=10_000.0)
    job.max_cost_usd = 50.0
    db.session.commit()
    ingest(job, job.current_attempt, _metrics(job, 4, total=100, seconds_a_step=10.0))   # heading for ~$1000
    db.session.refresh(job)
    assert job.stop_request["type"] == "spend_cap"
    assert "passed its spend cap of $50.00" in job.stop_request["message"]
    doc = json.loads(get_storage().get_bytes(job.layout.stop_request))
    assert doc["type"] == "spend_cap" and job.status == "training"      # it stops itself, after a checkpoint
    # The handler's error event then fails it, the user's to fix.
    s = EventStream(job.id, 1, start_seq=50)
    ingest(job, job.current_attempt, [s.make("error", error={
        "type": "spend_cap", "user_error": True, "message": doc["message"], "fix": "raise max_cost_usd"})])
    db.session.refresh(job)
    assert job.status == "failed" and job.error_type == "spend_cap" and job.error_user is True


def test_a_stop_for_a_job_nothing_runs_fails_it_at_once(job):
    attempt = job.current_attempt
    assert lifecycle.claim_end(attempt)
    job.status = "recovering"
    db.session.commit()
    assert stopping.request_stop(job, ErrorType.BUDGET_EXCEEDED, "the month's budget of $500.00 was reached") == "failed"
    db.session.commit()
    assert job.status == "failed" and job.error_type == "budget_exceeded"
    assert "Retry it from its last checkpoint" in job.error_fix
    assert stopping.request_stop(job, ErrorType.BUDGET_EXCEEDED, "again") == "nothing to stop"


def test_a_lost_attempt_of_a_job_asked_to_stop_fails_instead_of_recovering(job):
    job.stop_request = {"type": "spend_cap", "message": "the job's cost passed its spend cap of $5.00", "at": "x"}
    job.last_checkpoint_step = 7
    db.session.commit()
    attempt = job.current_attempt
    assert lifecycle.claim_end(attempt)
    lifecycle.settle_attempt(job, attempt, "FAILED", {"type": "worker_lost", "message": "worker lost"})
    assert job.status == "failed" and job.error_type == "spend_cap"
    assert "checkpoint of step 7" in job.error_fix


def test_a_cap_is_bounded_and_shown(client, auth, file_id):
    r = client.post("/api/training/jobs", headers=auth, json={"training_file_id": file_id, "max_cost_usd": -1})
    assert r.status_code == 400 and r.get_json()["error"]["field"] == "max_cost_usd"
    body = client.post("/api/training/jobs", headers=auth, json={"training_file_id": file_id, "max_cost_usd": 25}).get_json()
    assert body["max_cost_usd"] == 25 and body["cost_alerts"] == [] and body["projected_cost_usd"] is None


# ------------------------------------------------------------------ calibration
def test_calibration_counts_the_jobs_within_15_percent(app, client, auth, job):
    for n, (estimate, actual) in enumerate(((10.0, 10.5), (10.0, 8.0), (10.0, 11.4), (10.0, 13.0))):
        row = TrainingJob(**{c: getattr(job, c) for c in ("training_file_id", "name", "configuration", "preset",
                                                          "base_model", "method", "gpu_type", "gpu_pricing_tier",
                                                          "storage_prefix", "created_by")},
                          id=f"tj_cal{n}", status="completed", cost_estimate=estimate, actual_cost=actual)
        db.session.add(row)
    db.session.commit()
    body = client.get("/api/training/cost-calibration", headers=auth).get_json()
    assert (body["jobs"], body["within_15_pct"], body["share_within_15_pct"]) == (4, 2, 0.5)
    assert body["worst"][0]["job_id"] == "tj_cal3" and body["target_share"] == 0.9
