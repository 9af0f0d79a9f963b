"""The team's monthly budget and approvals, as admins, engineers and accountants meet them,
on Postgres and SQLite: alerts at 80% and 95% once each, a start that would pass the limit
refused with the numbers (and an admin's override recorded), running jobs asked to stop at
a checkpoint when the limit is reached, jobs above the approval threshold waiting for an
admin, and a CSV that adds up to the dashboard.

"Spent" is made by writing jobs' costs in the database, as the monitor would; the sweep's
turn is ``budgets.enforce``."""
from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest

from control.extensions import db
from control.models import JobAttempt, JobStatus, Notice, TrainingJob, utcnow
from control.services import budgets
from control.services.queue import get_queue
from control.services.storage import get_storage
from tests.test_console import Console

ON_DEMAND = {"type": "H100_PCIE", "pricing": "on_demand"}   # priced: estimates are not zero


@pytest.fixture
def boss(make_user):
    return make_user("boss@x", "admin")[1]


def _create(client, headers, file_id, **over) -> dict:
    body = {"training_file_id": file_id, "gpu": ON_DEMAND, "hyperparameters": {"max_steps": 5}, **over}
    r = client.post("/api/training/jobs", headers=headers, json=body)
    assert r.status_code == 201, r.get_json()
    return r.get_json()


def _set(job_id: str, **values) -> TrainingJob:
    job = db.session.get(TrainingJob, job_id)
    for key, value in values.items():
        setattr(job, key, value)
    db.session.commit()
    return job


def _spent(client, auth, file_id, cost: float, **over) -> str:
    """A finished job of this month that cost ``cost``."""
    job = _create(client, auth, file_id, **over)
    _set(job["id"], status=JobStatus.COMPLETED, actual_cost=cost, completed_at=utcnow())
    return job["id"]


def _running(job_id: str) -> TrainingJob:
    """The job has an attempt running on the endpoint, as the ``job`` fixture's."""
    job = db.session.get(TrainingJob, job_id)
    db.session.add(JobAttempt(job=job, number=1, runpod_job_id=f"rp-{job_id}", runpod_status="IN_PROGRESS"))
    job.status = JobStatus.TRAINING
    db.session.commit()
    return job


def _limit(client, boss, usd):
    r = client.put("/api/training/budget/monthly", headers=boss, json={"limit_usd": usd})
    assert r.status_code == 200, r.get_json()
    return r.get_json()


def _notices(kind: str) -> list[Notice]:
    return list(db.session.scalars(db.select(Notice).where(Notice.kind == kind).order_by(Notice.id)))


# ---------------------------------------------------------------------- alerts
def test_alerts_fire_at_80_and_at_95_percent_once_each_a_month(client, auth, boss, file_id):
    _limit(client, boss, 100)
    first = _spent(client, auth, file_id, 81.0)
    assert budgets.enforce()["alerts"] == 1
    assert budgets.enforce()["alerts"] == 0                       # the sweep runs again: nothing new
    [eighty] = _notices("budget.threshold")
    assert eighty.payload["percent"] == 80 and eighty.payload["channels"] == ["email"]
    assert eighty.payload["recipients"] == ["boss@x"]             # no recipients set: the admins
    assert eighty.payload["spent_usd"] == 81.0 and eighty.payload["limit_usd"] == 100

    _set(first, actual_cost=96.0)
    budgets.enforce()
    budgets.enforce()
    alerts = _notices("budget.threshold")
    assert [(n.payload["percent"], n.payload["channels"]) for n in alerts] == [
        (80, ["email"]), (95, ["email", "slack"])]
    month = client.get("/api/training/budget/monthly", headers=auth).get_json()
    assert [(a["percent"], a["reached"], a["alerted_at"] is not None) for a in month["alerts"]] == [
        (80, True, True), (95, True, True)]


def test_alerts_go_to_the_recipients_set_and_a_new_threshold_alerts_once(client, auth, boss, file_id):
    _limit(client, boss, 100)
    _spent(client, auth, file_id, 60.0)
    r = client.post("/api/training/budget/alerts", headers=boss, json={
        "alerts": [{"percent": 50, "channels": ["slack"]}, {"percent": 90, "channels": ["email"]}],
        "recipients": ["Finance@Example.com", "ops@example.com"]})
    assert r.status_code == 200, r.get_json()
    assert client.get("/api/training/budget/alerts", headers=auth).get_json()["recipients"] == [
        "finance@example.com", "ops@example.com"]
    budgets.enforce()
    budgets.enforce()
    [half] = _notices("budget.threshold")
    assert half.payload["percent"] == 50 and half.payload["recipients"] == ["finance@example.com", "ops@example.com"]


# ---------------------------------------------------------------------- refusing a start
def test_a_start_that_would_pass_the_limit_is_refused_with_the_numbers(client, auth, boss, file_id):
    pending = _create(client, auth, file_id)
    estimate = pending["cost_estimate"]
    assert estimate > 0
    queued = _create(client, auth, file_id)
    _set(queued["id"], status=JobStatus.QUEUED)                   # committed at its estimate
    _spent(client, auth, file_id, 10.0)
    _limit(client, boss, 10.0 + estimate * 1.5)                   # room for one more, not two

    r = client.post(f"/api/training/jobs/{pending['id']}/start", headers=auth, json={})
    assert r.status_code == 402, r.get_json()
    err = r.get_json()["error"]
    assert err["code"] == "budget_exceeded"
    numbers = err["budget"]
    assert numbers["spent_usd"] == 10.0 and numbers["committed_usd"] == pytest.approx(estimate, abs=1e-4)
    assert numbers["estimate_usd"] == pytest.approx(estimate, abs=1e-4)
    assert numbers["over_by_usd"] == pytest.approx(estimate * 0.5, abs=1e-3)
    for figure in ("limit $", "spent $10.00", "committed $", "estimate $", "budget_override"):
        assert figure in err["message"]
    dashboard = client.get("/api/training/budget/monthly", headers=auth).get_json()
    assert dashboard["committed_usd"] == numbers["committed_usd"] and dashboard["spent_usd"] == 10.0
    assert client.get(f"/api/training/jobs/{pending['id']}", headers=auth).get_json()["status"] == "pending"

    # Created with "start": true, it is refused the same way and not kept.
    r = client.post("/api/training/jobs", headers=auth, json={
        "training_file_id": file_id, "gpu": ON_DEMAND, "hyperparameters": {"max_steps": 5}, "start": True})
    assert r.status_code == 402
    assert db.session.query(TrainingJob).count() == 3


def test_an_admins_override_is_recorded_and_shown_and_a_non_admins_is_forbidden(client, auth, boss, file_id):
    job = _create(client, auth, file_id)
    _limit(client, boss, job["cost_estimate"] / 2)
    override = {"budget_override": {"reason": "client demo on Friday"}}

    r = client.post(f"/api/training/jobs/{job['id']}/start", headers=auth, json=override)
    assert r.status_code == 403 and "only admins" in r.get_json()["error"]["message"]
    r = client.post(f"/api/training/jobs/{job['id']}/start", headers=boss, json=override)
    assert r.status_code == 202, r.get_json()
    shown = client.get(f"/api/training/jobs/{job['id']}", headers=auth).get_json()
    assert shown["status"] == "queued"
    assert shown["budget_override"]["reason"] == "client demo on Friday"
    assert shown["budget_override"]["by"] == "boss@x" and shown["budget_override"]["at"]


def test_a_job_within_the_budget_starts(client, auth, file_id):
    job = _create(client, auth, file_id)
    r = client.post(f"/api/training/jobs/{job['id']}/start", headers=auth, json={})
    assert r.status_code == 202 and r.get_json()["budget_override"] is None
    assert get_queue().count == 1


# ---------------------------------------------------------------------- the hard limit
def test_at_the_limit_running_jobs_are_asked_to_stop_at_a_checkpoint_but_not_overridden_ones(
        client, auth, boss, file_id):
    plain = _create(client, auth, file_id)
    waiting = _create(client, auth, file_id)
    kept = _create(client, boss, file_id)
    assert client.post(f"/api/training/jobs/{kept['id']}/start", headers=boss,
                       json={"budget_override": {"reason": "the client pays for this one"}}).status_code == 202
    _running(plain["id"])
    _running(kept["id"])
    _set(waiting["id"], status=JobStatus.QUEUED)                  # nothing runs it yet
    _limit(client, boss, 50)
    _spent(client, auth, file_id, 49.0)
    assert budgets.enforce()["stops_asked"] == 0                  # under the limit: nothing stops

    _spent(client, auth, file_id, 1.0)
    done = budgets.enforce()
    assert (done["stops_asked"], done["stopped"]) == (1, 1)
    asked = db.session.get(TrainingJob, plain["id"])
    assert asked.stop_request["type"] == "budget_exceeded"
    assert "$50.00" in asked.stop_request["message"] and asked.status == JobStatus.TRAINING
    document = json.loads(get_storage().get_bytes(asked.layout.stop_request))
    assert document == asked.stop_request                        # what the handler reads
    failed = db.session.get(TrainingJob, waiting["id"])
    assert failed.status == JobStatus.FAILED and failed.error_type == "budget_exceeded"
    overridden = db.session.get(TrainingJob, kept["id"])
    assert overridden.stop_request is None and not get_storage().exists(overridden.layout.stop_request)
    assert budgets.enforce()["stops_asked"] == 0                  # asked once
    assert client.get("/api/training/budget/monthly", headers=auth).get_json()["over_limit"] is True


# ---------------------------------------------------------------------- approvals
def test_a_job_above_the_approval_threshold_waits_for_an_admin_who_approves_it(app, client, auth, boss, file_id):
    app.config["APPROVAL_THRESHOLD_USD"] = 0.0001
    job = _create(client, auth, file_id, start=True)
    assert job["status"] == "awaiting_approval" and job["approval"]["state"] == "awaiting"
    assert get_queue().count == 0                                 # not dispatched
    [told] = _notices("job.awaiting_approval")
    assert told.payload["recipients"] == ["boss@x"] and told.payload["threshold_usd"] == 0.0001
    month = client.get("/api/training/budget/monthly", headers=auth).get_json()
    assert month["awaiting_approval"] == 1 and month["committed_usd"] == pytest.approx(job["cost_estimate"], abs=1e-4)

    url = f"/api/training/jobs/{job['id']}/approval"
    r = client.post(url, headers=auth, json={"decision": "approve"})
    assert r.status_code == 403 and "only admins" in r.get_json()["error"]["message"]
    r = client.post(url, headers=boss, json={"decision": "approve", "reason": "worth it"})
    assert r.status_code == 200, r.get_json()
    approved = r.get_json()
    assert approved["status"] == "queued"
    assert approved["approval"]["state"] == "approved" and approved["approval"]["by"] == "boss@x"
    assert get_queue().count == 1 and get_queue().jobs[0].func_name == "control.tasks.dispatch"
    [decided] = _notices("job.approval_decided")
    assert decided.payload["decision"] == "approved" and decided.user_id == job["created_by"]
    again = client.post(url, headers=boss, json={"decision": "decline", "reason": "changed my mind"})
    assert again.status_code == 409                               # no longer waiting


def test_an_admin_declines_a_waiting_job_with_a_reason_and_it_is_cancelled(app, client, auth, boss, file_id):
    app.config["APPROVAL_THRESHOLD_USD"] = 0.0001
    job = _create(client, auth, file_id, start=True)
    url = f"/api/training/jobs/{job['id']}/approval"
    r = client.post(url, headers=boss, json={"decision": "decline"})
    assert r.status_code == 400 and r.get_json()["error"]["field"] == "reason"
    r = client.post(url, headers=boss, json={"decision": "decline", "reason": "too dear for a test"})
    assert r.status_code == 200, r.get_json()
    declined = r.get_json()
    assert declined["status"] == "cancelled" and declined["completed_at"]
    assert declined["error_type"] == "cancelled"
    assert declined["error_message"] == "declined by boss@x: too dear for a test"
    assert declined["approval"]["state"] == "declined"
    assert get_queue().count == 0
    [decided] = _notices("job.approval_decided")
    assert decided.payload["decision"] == "declined" and decided.payload["reason"] == "too dear for a test"
    assert client.post(f"/api/training/jobs/{job['id']}/approval", headers=boss,
                       json={"decision": "approve"}).status_code == 409


# ---------------------------------------------------------------------- the dashboard and the CSV
def test_the_csv_adds_up_to_the_dashboard_by_user_and_by_tag(client, auth, boss, file_id):
    _spent(client, auth, file_id, 1.23456, tags=["acme", "q3"], name="=cmd|' /C calc'!A0")
    _spent(client, auth, file_id, 2.5, tags=["acme"])
    _spent(client, boss, file_id, 0.0049)
    running = _create(client, auth, file_id)
    _running(running["id"])
    _set(running["id"], actual_cost=0.75)                         # running: its cost so far counts
    old = _spent(client, auth, file_id, 99.0)
    last_month = utcnow().replace(day=1) - timedelta(days=1)
    _set(old, created_at=last_month)                              # counts in the month it was created

    mine = client.get("/api/training/budget/monthly", headers=auth).get_json()
    assert [u["email"] for u in mine["by_user"]] == ["ana@example.com"]     # others' spend: admins only
    assert client.get("/api/training/budget/monthly.csv", headers=auth).status_code == 403
    month = client.get("/api/training/budget/monthly", headers=boss).get_json()
    assert month["spent_usd"] == mine["spent_usd"] == pytest.approx(1.23456 + 2.5 + 0.0049 + 0.75, abs=1e-4)
    r = client.get("/api/training/budget/monthly.csv", headers=boss)
    assert r.status_code == 200 and r.mimetype == "text/csv"
    assert f"brightrun-spend-{month['month']}.csv" in r.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(r.get_data(as_text=True))))
    *jobs, total = rows
    assert len(jobs) == 4 and total["id"] == "total"
    assert float(total["actual_cost_usd"]) == month["spent_usd"]
    assert sum(float(j["actual_cost_usd"]) for j in jobs) == pytest.approx(month["spent_usd"], abs=1e-3)
    assert all(j["name"][0] not in "=+-@" for j in jobs)          # no formula reaches a spreadsheet
    assert {j["owner"] for j in jobs} == {"ana@example.com", "boss@x"}

    users = {u["email"]: u for u in month["by_user"]}
    assert users["boss@x"]["spent_usd"] == 0.0049 and users["ana@example.com"]["jobs"] == 3
    tags = {t["tag"]: t["spent_usd"] for t in month["by_tag"]}
    assert tags["acme"] == pytest.approx(3.73456, abs=1e-4) and tags["q3"] == pytest.approx(1.23456, abs=1e-4)
    assert tags["(none)"] == pytest.approx(0.7549, abs=1e-4)
    assert sum(d["spent_usd"] for d in month["by_day"]) == pytest.approx(month["spent_usd"], abs=1e-3)
    assert month["forecast_usd"] >= month["spent_usd"] + month["committed_usd"]
    assert month["remaining_usd"] == pytest.approx(500 - month["spent_usd"] - month["committed_usd"], abs=1e-3)

    label = f"{last_month.year:04d}-{last_month.month:02d}"
    previous = client.get(f"/api/training/budget/monthly?month={label}", headers=auth).get_json()
    assert previous["spent_usd"] == 99.0 and previous["jobs"] == 1
    rows = list(csv.reader(io.StringIO(client.get(f"/api/training/budget/monthly.csv?month={label}",
                                                  headers=boss).get_data(as_text=True))))
    assert rows[-1][-1] == "99.0" and len(rows) == 3


# Each of the refusals below is one request on one app: the cases share the app (its setup
# is most of a test's time).
def test_a_month_out_of_range_or_malformed_is_refused_naming_it(client, auth, boss):
    for month in ("2019-12", "2999-01", "2026-13", "march", "2026-3"):
        for url, who in (("/api/training/budget/monthly", auth), ("/api/training/budget/monthly.csv", boss)):
            r = client.get(url, headers=who, query_string={"month": month})
            assert r.status_code == 400 and r.get_json()["error"]["field"] == "month", (month, r.get_json())


# ---------------------------------------------------------------------- the settings' validation
def test_a_limit_out_of_bounds_is_refused_naming_the_field(client, boss):
    for body in ({"limit_usd": 0}, {"limit_usd": -5}, {"limit_usd": 1_000_001}, {"limit_usd": "100"},
                 {"limit_usd": None}, {}):
        r = client.put("/api/training/budget/monthly", headers=boss, json=body)
        assert r.status_code == 400 and r.get_json()["error"]["field"] == "limit_usd", (body, r.get_json())
    assert client.get("/api/training/budget/monthly", headers=boss).get_json()["limit_usd"] == 500


def test_only_admins_set_the_limit_and_the_alerts(client, auth, boss):
    assert client.put("/api/training/budget/monthly", headers=auth, json={"limit_usd": 900}).status_code == 403
    assert client.post("/api/training/budget/alerts", headers=auth,
                       json={"alerts": [{"percent": 50, "channels": ["email"]}]}).status_code == 403
    assert _limit(client, boss, 900)["limit_usd"] == 900
    month = client.get("/api/training/budget/monthly", headers=auth).get_json()
    assert month["limit_usd"] == 900 and month["remaining_usd"] == 900
    defaults = client.get("/api/training/budget/alerts", headers=auth).get_json()
    assert defaults["alerts"] == [{"percent": 80, "channels": ["email"]},
                                  {"percent": 95, "channels": ["email", "slack"]}]
    assert defaults["recipients"] == [] and defaults["effective_recipients"] == ["boss@x"]


ONE = {"percent": 80, "channels": ["email"]}


REFUSED_ALERTS = [
    ({"alerts": []}, "alerts"),
    ({"alerts": [ONE] + [{"percent": p, "channels": ["email"]} for p in (10, 20, 30, 40, 50)]}, "alerts"),
    ({"alerts": [ONE, {"percent": 80, "channels": ["slack"]}]}, "alerts"),
    ({"alerts": [{"percent": 0, "channels": ["email"]}]}, "alerts.0.percent"),
    ({"alerts": [{"percent": 101, "channels": ["email"]}]}, "alerts.0.percent"),
    ({"alerts": [{"percent": 50, "channels": ["sms"]}]}, "alerts.0.channels.0"),
    ({"alerts": [{"percent": 50, "channels": []}]}, "alerts.0.channels"),
    ({"alerts": [{"percent": 50, "channels": ["email", "email"]}]}, "alerts.0.channels"),
    ({"alerts": [ONE], "recipients": ["not an email"]}, "recipients"),
    ({"alerts": [ONE], "recipients": ["a@b.com", "@b.com"]}, "recipients"),
    ({"alerts": [ONE], "recipients": [f"u{i}@example.com" for i in range(21)]}, "recipients"),
    ({"recipients": []}, "alerts"),
]


def test_alert_settings_out_of_bounds_are_refused_naming_the_field(client, boss):
    for body, field in REFUSED_ALERTS:
        r = client.post("/api/training/budget/alerts", headers=boss, json=body)
        assert r.status_code == 400 and r.get_json()["error"]["field"] == field, (body, r.get_json())
    assert client.get("/api/training/budget/alerts", headers=boss).get_json()["alerts"][0]["percent"] == 80


# ---------------------------------------------------------------------- the console
def _console(app, make_person, email, role) -> Console:
    make_person(email, role)
    return Console(app).login(email)


def test_the_budget_page_shows_everyone_the_figures_and_only_admins_the_forms(app, client, make_person, file_id):
    engineer = _console(app, make_person, "eng@example.com", "engineer")
    page = engineer.get("/budget")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "$500.00" in html and 'id="budget-csv"' not in html and 'id="limit-form"' not in html
    assert engineer.get("/budget/export.csv").status_code == 403

    admin = _console(app, make_person, "chief@example.com", "admin")
    html = admin.get("/budget").get_data(as_text=True)
    assert 'id="limit-form"' in html and 'id="alerts-form"' in html and 'id="budget-csv"' in html
    r = admin.get("/budget/export.csv")
    assert r.status_code == 200 and r.mimetype == "text/csv" and r.get_data(as_text=True).startswith("id,name,owner")
    r = admin.post("/budget/limit", {"limit_usd": "0"})
    assert r.status_code == 400 and "Limit: Input should be greater than 0" in r.get_data(as_text=True)
    r = admin.post("/budget/limit", {"limit_usd": "750"})
    assert r.status_code == 302
    assert "$750.00" in admin.get("/budget").get_data(as_text=True)
    r = admin.post("/budget/alerts", {"percent_0": "70", "channels_0": ["email", "slack"], "percent_1": "",
                                      "recipients": "money@example.com\nops@example.com"})
    assert r.status_code == 302, r.get_data(as_text=True)
    assert budgets.alert_settings()["alerts"] == [{"percent": 70, "channels": ["email", "slack"]}]
    r = admin.post("/budget/alerts", {"percent_0": "70", "channels_0": "email", "percent_1": "70",
                                      "channels_1": "slack", "recipients": "nobody"})
    assert r.status_code == 400
    assert "each percent once" in r.get_data(as_text=True) and "not an email address" in r.get_data(as_text=True)
    assert engineer.post("/budget/limit", {"limit_usd": "9"}).status_code == 403


def test_an_admin_approves_and_declines_from_the_budget_page(app, client, auth, make_person, file_id):
    app.config["APPROVAL_THRESHOLD_USD"] = 0.0001
    first = _create(client, auth, file_id, start=True, name="big run one")
    second = _create(client, auth, file_id, start=True, name="big run two")
    admin = _console(app, make_person, "chief@example.com", "admin")
    html = admin.get("/budget").get_data(as_text=True)
    assert "big run one" in html and "Approve" in html and "Decline" in html
    assert admin.post("/budget/approval", {"job_id": first["id"], "decision": "approve"}).status_code == 302
    assert db.session.get(TrainingJob, first["id"]).status == JobStatus.QUEUED
    r = admin.post("/budget/approval", {"job_id": second["id"], "decision": "decline", "reason": ""})
    assert r.status_code == 400 and "reason" in r.get_data(as_text=True)
    assert admin.post("/budget/approval", {"job_id": second["id"], "decision": "decline",
                                           "reason": "not this month"}).status_code == 302
    assert db.session.get(TrainingJob, second["id"]).status == JobStatus.CANCELLED
    r = admin.post("/budget/approval", {"job_id": second["id"], "decision": "approve"})
    assert r.status_code == 302
    assert "is no longer awaiting approval (it is cancelled)" in admin.get("/budget").get_data(as_text=True)
