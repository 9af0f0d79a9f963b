"""The audit trail, through the JSON API and the console, on Postgres and SQLite: every
action writes one entry naming who did it to what (created, started, cancelled, retried,
deleted, downloaded, reviewed, approved or rejected, an admin's approval, shared, a budget
and a rubric changed), a refused or failed request writes none, ``GET /api/audit`` filters
and pages for admins only, the console's audit page and its CSV, a job page's Activity, and
entries cannot be changed or removed."""
from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from control.extensions import db
from control.models import AuditEntry, ModelArtifact, User, ValidationReport, utcnow
from control.services import audit, budgets
from control.services.exceptions import BudgetExceeded
from control.services.storage import get_storage
from tests.test_console import Console, _FreshContextClient
from tests.test_console_evaluation import _job, _store_evaluation

ON_DEMAND = {"type": "H100_PCIE", "pricing": "on_demand"}   # priced: estimates are not zero


@pytest.fixture
def people(app, make_user):
    owner_id, owner = make_user("owner@example.com", "engineer")
    reviewer_id, reviewer = make_user("rita@example.com", "reviewer")
    admin_id, admin = make_user("ada@example.com", "admin")
    return {"owner": owner, "owner_id": owner_id, "reviewer": reviewer, "reviewer_id": reviewer_id,
            "admin": admin, "admin_id": admin_id}


def _entries(**filters) -> list[AuditEntry]:
    return audit.entries(limit=500, **filters)


def _committed() -> int:
    """Entries in the database, read on a connection of its own: what other requests see."""
    with db.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(AuditEntry)).scalar_one()


def _one(action: str, **filters) -> AuditEntry:
    rows = _entries(action=action, **filters)
    assert len(rows) == 1, [(e.action, e.details) for e in _entries()]
    return rows[0]


def _create(client, headers, file_id, **over) -> dict:
    r = client.post("/api/training/jobs", headers=headers, json={"training_file_id": file_id, **over})
    assert r.status_code == 201, r.get_json()
    return r.get_json()


def _finish(job_id: str, status: str = "failed") -> None:
    from control.models import TrainingJob
    job = db.session.get(TrainingJob, job_id)
    job.status, job.completed_at = status, utcnow()
    db.session.commit()


# ---------------------------------------------------------------------- every action, one entry
def test_a_jobs_life_is_on_the_trail_with_who_did_each_step(client, people, upload, small_sample):
    owner = people["owner"]
    file_id = upload(small_sample, headers=owner).get_json()["id"]
    job = _create(client, owner, file_id, name="trail run")
    created = _one("job.created", job_id=job["id"])
    assert (created.actor_id, created.actor_email, created.target_type, created.target_id) == \
        (people["owner_id"], "owner@example.com", "job", job["id"])
    assert created.details["name"] == "trail run" and created.client_address == "127.0.0.1"

    assert client.post(f"/api/training/jobs/{job['id']}/start", headers=owner).status_code == 202
    started = _one("job.started", job_id=job["id"])
    assert started.actor_id == people["owner_id"] and started.details["awaiting_approval"] is False

    assert client.post(f"/api/training/jobs/{job['id']}/cancel", headers=owner).status_code == 202
    cancelled = _one("job.cancelled", job_id=job["id"])
    assert cancelled.actor_id == people["owner_id"] and cancelled.details["status"] == "queued"

    r = client.post(f"/api/training/jobs/{job['id']}/retry", headers=owner, json={})
    assert r.status_code == 201, r.get_json()
    new_id = r.get_json()["id"]
    retried = _one("job.retried", job_id=job["id"])
    assert retried.actor_id == people["owner_id"] and retried.details == {"new_job_id": new_id}
    assert _one("job.created", job_id=new_id).actor_id == people["owner_id"]

    # An admin deletes the retry: the trail keeps the job's entries, with who deleted it.
    assert client.delete(f"/api/training/jobs/{new_id}", headers=people["admin"]).status_code == 204
    deleted = _one("job.deleted", job_id=new_id)
    assert (deleted.actor_email, deleted.target_id, deleted.details["name"]) == \
        ("ada@example.com", new_id, "trail run (retry)")
    assert [e.action for e in _entries(job_id=new_id)] == ["job.deleted", "job.created"]
    assert [e.action for e in _entries(job_id=job["id"])] == ["job.retried", "job.cancelled", "job.started",
                                                                "job.created"]


def test_each_download_is_on_the_trail_with_its_user_and_kind(app, client, people, make_person, small_sample):
    owner = db.session.get(User, people["owner_id"])
    job = _job(owner, small_sample, completed=True)
    _store_evaluation(job)
    before = _committed()
    # No report built yet (409), a package its outputs cannot make (409): no download, no entry.
    assert client.get(f"/api/training/jobs/{job.id}/download/validation-report",
                      headers=people["owner"]).status_code == 409
    r = client.get(f"/api/training/jobs/{job.id}/download/deployment-package?redirect=false", headers=people["owner"])
    assert r.status_code == 409 and _committed() == before
    r = client.get(f"/api/training/jobs/{job.id}/download/adapters?redirect=false", headers=people["owner"])
    assert r.status_code == 200, r.get_json()
    assert client.get(f"/api/training/jobs/{job.id}/download/metrics?format=csv",
                      headers=people["admin"]).status_code == 200
    key = f"{job.storage_prefix}/reports/validation-report-v1.pdf"
    get_storage().put_bytes(key, b"%PDF-1.4 stand-in")
    db.session.add(ValidationReport(training_job_id=job.id, version=1, storage_key=key, size_bytes=17,
                                    fingerprint="f" * 16, trigger="evaluation", build_seconds=0.1))
    db.session.commit()
    assert client.get(f"/api/training/jobs/{job.id}/download/validation-report",
                      headers=people["owner"]).status_code == 200
    # The console's downloads too, as the person signed in.
    admin = _console(app, make_person, "boss@example.com", "admin")
    assert admin.get(f"/jobs/{job.id}/download/adapter").status_code == 302
    assert admin.get(f"/jobs/{job.id}/report.pdf").status_code == 200
    rows = _entries(action="job.downloaded", job_id=job.id)
    assert [(e.actor_email, e.details["kind"]) for e in rows] == [
        ("boss@example.com", "validation_report"), ("boss@example.com", "adapter"),
        ("owner@example.com", "validation_report"), ("ada@example.com", "metrics"),
        ("owner@example.com", "adapter")]
    assert all(e.target_type == "job" and e.target_id == job.id for e in rows)
    # The counter (adapter and package links) and the trail agree.
    art = db.session.scalar(select(ModelArtifact).where(ModelArtifact.training_job_id == job.id))
    db.session.refresh(art)
    assert art.download_count == 2 == sum(1 for e in rows if e.details["kind"] == "adapter")


def test_reviews_delivery_decisions_and_share_links_are_on_the_trail(app, client, people, small_sample):
    owner = db.session.get(User, people["owner_id"])
    job = _job(owner, small_sample, completed=True)
    _store_evaluation(job)
    page = client.get(f"/api/training/jobs/{job.id}/reviews/next?suite=ei", headers=people["reviewer"]).get_json()
    scores = {label: {c: 4 for c in ("empathy", "clarity", "appropriateness")} for label in ("A", "B")}
    r = client.post(f"/api/training/jobs/{job.id}/reviews", headers=people["reviewer"], json={
        "suite": "ei", "item_id": page["item"]["id"], "run": page["run"], "answers": scores, "preference": "A"})
    assert r.status_code == 200, r.get_json()
    reviewed = _one("review.submitted", job_id=job.id)
    assert reviewed.actor_email == "rita@example.com"
    assert reviewed.details == {"suite": "ei", "item_id": page["item"]["id"], "run": page["run"], "replaced": False}
    # No scores and no preference on the trail: which label was which stays blind.

    r = client.post(f"/api/training/jobs/{job.id}/decisions", headers=people["reviewer"],
                    json={"decision": "rejected", "reason": "Waiting for the second reviewer"})
    assert r.status_code == 201, r.get_json()
    rejected = _one("delivery.rejected", job_id=job.id)
    assert rejected.actor_email == "rita@example.com" and rejected.details["reason"] == "Waiting for the second reviewer"

    r = client.post(f"/api/training/jobs/{job.id}/share", headers=people["owner"], json={"expires_in_days": 7})
    assert r.status_code == 201, r.get_json()
    link_id = r.get_json()["id"]
    shared = _one("share.created", job_id=job.id)
    assert (shared.actor_email, shared.target_type, shared.target_id, shared.details["days"]) == \
        ("owner@example.com", "share_link", link_id, 7)
    assert client.delete(f"/api/training/jobs/{job.id}/share/{link_id}", headers=people["owner"]).status_code == 200
    assert client.delete(f"/api/training/jobs/{job.id}/share", headers=people["owner"]).status_code == 200
    revoked = _one("share.revoked", job_id=job.id)           # revoking a revoked link again records nothing
    assert (revoked.actor_email, revoked.target_id) == ("owner@example.com", link_id)


def test_budget_changes_and_an_admins_approval_are_on_the_trail(app, client, people, upload, small_sample):
    admin = people["admin"]
    assert client.put("/api/training/budget/monthly", headers=admin, json={"limit_usd": 900}).status_code == 200
    changed = _one("budget.changed")
    assert (changed.actor_email, changed.target_type, changed.target_id) == ("ada@example.com", "budget", "team")
    assert changed.details == {"limit_usd": {"from": 500.0, "to": 900.0}}
    r = client.post("/api/training/budget/alerts", headers=admin,
                    json={"alerts": [{"percent": 75, "channels": ["email"]}], "recipients": ["ops@example.com"]})
    assert r.status_code == 200, r.get_json()
    alerts = _one("budget.alerts_changed")
    assert alerts.details == {"alerts": [{"percent": 75, "channels": ["email"]}], "recipients": ["ops@example.com"]}

    app.config["APPROVAL_THRESHOLD_USD"] = 0.0001
    file_id = upload(small_sample, headers=people["owner"]).get_json()["id"]
    job = _create(client, people["owner"], file_id, gpu=ON_DEMAND, start=True)
    assert job["status"] == "awaiting_approval"
    assert _one("job.started", job_id=job["id"]).details["awaiting_approval"] is True
    r = client.post(f"/api/training/jobs/{job['id']}/approval", headers=admin,
                    json={"decision": "approve", "reason": "client signed off"})
    assert r.status_code == 200, r.get_json()
    decided = _one("job.approval_decided", job_id=job["id"])
    assert decided.actor_email == "ada@example.com"
    assert decided.details["decision"] == "approved" and decided.details["reason"] == "client signed off"


def test_rubrics_created_and_archived_are_on_the_trail(client, people):
    r = client.post("/api/rubrics", headers=people["admin"], json={
        "name": "Acme voice", "client": "Acme", "characteristics": [{"name": "Warmth", "description": "kind"}]})
    assert r.status_code == 201, r.get_json()
    rubric_id = r.get_json()["id"]
    created = _one("rubric.created")
    assert (created.actor_email, created.target_type, created.target_id) == ("ada@example.com", "rubric", rubric_id)
    assert created.details == {"name": "Acme voice", "client": "Acme", "characteristics": 1}
    assert client.delete(f"/api/rubrics/{rubric_id}", headers=people["admin"]).status_code == 200
    assert client.delete(f"/api/rubrics/{rubric_id}", headers=people["admin"]).status_code == 200
    assert _one("rubric.archived").target_id == rubric_id      # archived once, recorded once


# ---------------------------------------------------------------------- refused: no entry
def test_a_refused_or_failed_request_writes_no_entry(app, client, people, upload, small_sample):
    owner, admin = people["owner"], people["admin"]
    file_id = upload(small_sample, headers=owner).get_json()["id"]
    job = _create(client, owner, file_id, gpu=ON_DEMAND)
    baseline, committed = len(_entries()), _committed()

    def nothing_new(r, status):
        assert r.status_code == status, r.get_json()
        db.session.expire_all()
        assert len(_entries()) == baseline, [(e.action, e.details) for e in _entries()[:3]]
        assert _committed() == committed

    # The budget: this job's estimate passes a tiny limit.
    assert client.put("/api/training/budget/monthly", headers=admin, json={"limit_usd": 0.0001}).status_code == 200
    baseline, committed = len(_entries()), _committed()
    nothing_new(client.post(f"/api/training/jobs/{job['id']}/start", headers=owner), 402)
    # Created and started at once, refused by the budget: neither the job nor its entries are kept.
    nothing_new(client.post("/api/training/jobs", headers=owner,
                            json={"training_file_id": file_id, "gpu": ON_DEMAND, "start": True}), 402)
    # Not an admin: neither a budget nor an override.
    nothing_new(client.put("/api/training/budget/monthly", headers=owner, json={"limit_usd": 900}), 403)
    nothing_new(client.post(f"/api/training/jobs/{job['id']}/start", headers=owner,
                            json={"budget_override": {"reason": "trust me"}}), 403)
    assert client.put("/api/training/budget/monthly", headers=admin, json={"limit_usd": 100000}).status_code == 200
    baseline, committed = len(_entries()), _committed()

    # The quota: one active job at most.
    app.config["MAX_ACTIVE_JOBS_PER_USER"] = 1
    other = _create(client, owner, file_id)
    assert client.post(f"/api/training/jobs/{other['id']}/start", headers=owner).status_code == 202
    baseline, committed = len(_entries()), _committed()
    nothing_new(client.post(f"/api/training/jobs/{job['id']}/start", headers=owner), 429)
    # A conflict: starting a started job; cancelling or deleting what its state does not allow.
    nothing_new(client.post(f"/api/training/jobs/{other['id']}/start", headers=owner), 409)
    nothing_new(client.delete(f"/api/training/jobs/{other['id']}", headers=owner), 409)
    _finish(other["id"])
    baseline, committed = len(_entries()), _committed()
    nothing_new(client.post(f"/api/training/jobs/{other['id']}/cancel", headers=owner), 409)
    nothing_new(client.post(f"/api/training/jobs/{job['id']}/retry", headers=owner, json={}), 409)
    # Bad rubrics: no characteristic, a duplicate name, not an admin.
    rubric = {"name": "Acme", "characteristics": [{"name": "Warmth", "description": "kind"}]}
    assert client.post("/api/rubrics", headers=admin, json=rubric).status_code == 201
    baseline, committed = len(_entries()), _committed()
    nothing_new(client.post("/api/rubrics", headers=admin, json={"name": "B", "characteristics": []}), 400)
    nothing_new(client.post("/api/rubrics", headers=admin, json=rubric), 409)
    nothing_new(client.post("/api/rubrics", headers=owner, json={**rubric, "name": "C"}), 403)
    # A bad budget, a download before the job completed, another user's job.
    nothing_new(client.put("/api/training/budget/monthly", headers=admin, json={"limit_usd": -5}), 400)
    nothing_new(client.get(f"/api/training/jobs/{job['id']}/download/adapters", headers=owner), 409)
    nothing_new(client.post(f"/api/training/jobs/{job['id']}/cancel", headers=people["reviewer"]), 404)


def test_an_entry_added_before_a_request_fails_is_rolled_back_with_it(app, people, upload, small_sample,
                                                                      monkeypatch):
    """The app's error path: each request in its own app context, as a server runs it, so
    the session is removed (rolled back) when the request ends; an entry recorded before a
    refusal or a crash is never written."""
    file_id = upload(small_sample, headers=people["owner"]).get_json()["id"]
    job_id = _create(app.test_client(), people["owner"], file_id)["id"]
    before = _committed()

    def recorded_then(exc):
        def check_start(job, by, override):
            audit.record("job.started", actor=by, target_type="job", target_id=job.id, job_id=job.id)
            raise exc
        return check_start

    served = _FreshContextClient(app.test_client(), app)
    monkeypatch.setattr(budgets, "check_start", recorded_then(BudgetExceeded("over", {})))
    assert served.post(f"/api/training/jobs/{job_id}/start", headers=people["owner"]).status_code == 402
    monkeypatch.setattr(budgets, "check_start", recorded_then(RuntimeError("a crash")))
    assert served.post(f"/api/training/jobs/{job_id}/start", headers=people["owner"]).status_code == 500
    assert _committed() == before
    monkeypatch.undo()
    assert served.post(f"/api/training/jobs/{job_id}/start", headers=people["owner"]).status_code == 202
    assert _committed() == before + 1


def test_a_delivery_decision_refused_for_its_reason_writes_no_entry(client, people, small_sample):
    owner = db.session.get(User, people["owner_id"])
    job = _job(owner, small_sample, completed=True)
    _store_evaluation(job)
    before = _committed()
    r = client.post(f"/api/training/jobs/{job.id}/decisions", headers=people["reviewer"],
                    json={"decision": "approved", "reason": "Looks good"})      # targets not met go unnamed
    assert r.status_code == 400, r.get_json()
    r = client.post(f"/api/training/jobs/{job.id}/decisions", headers=people["owner"],
                    json={"decision": "rejected", "reason": "no"})               # not a reviewer
    assert r.status_code == 403
    db.session.expire_all()
    assert _committed() == before and not _entries(action="delivery.")


# ---------------------------------------------------------------------- GET /api/audit
def _seed(actor: User | None, action: str, at, job_id=None, **details) -> AuditEntry:
    entry = audit.record(action, actor=actor, target_type="job" if job_id else "budget", target_id=job_id or "team",
                         job_id=job_id, details=details)
    entry.at = at
    db.session.commit()
    return entry


def test_the_api_filters_pages_and_is_for_admins_only(client, people):
    owner, admin = db.session.get(User, people["owner_id"]), db.session.get(User, people["admin_id"])
    now = utcnow()
    old = _seed(owner, "job.created", now - timedelta(days=10), "tj_a", name="a")
    _seed(owner, "job.started", now - timedelta(days=5), "tj_a")
    _seed(admin, "budget.changed", now - timedelta(days=3))
    _seed(None, "job.cancelled", now - timedelta(days=2), "tj_a")
    newest = _seed(admin, "job.downloaded", now - timedelta(hours=1), "tj_b", kind="adapter")

    def get(query="", who=admin):
        return client.get(f"/api/audit{query}", headers=people["admin"] if who is admin else who)

    body = get().get_json()
    assert [e["action"] for e in body["data"]] == ["job.downloaded", "job.cancelled", "budget.changed",
                                                   "job.started", "job.created"]
    assert body["next_before"] is None
    assert body["data"][0] == {"id": newest.id, "at": body["data"][0]["at"], "actor_id": people["admin_id"],
                               "actor_email": "ada@example.com", "action": "job.downloaded", "target_type": "job",
                               "target_id": "tj_b", "job_id": "tj_b", "details": {"kind": "adapter"},
                               "client_address": None}
    since = (now - timedelta(days=4)).date().isoformat()
    assert [e["action"] for e in get(f"?since={since}").get_json()["data"]] == \
        ["job.downloaded", "job.cancelled", "budget.changed"]
    until = (now - timedelta(days=4)).isoformat().replace("+00:00", "Z")
    assert [e["action"] for e in get(f"?until={until}").get_json()["data"]] == ["job.started", "job.created"]
    assert [e["action"] for e in get("?actor=OWNER@example.com").get_json()["data"]] == \
        ["job.started", "job.created"]
    assert [e["action"] for e in get(f"?actor={people['admin_id']}").get_json()["data"]] == \
        ["job.downloaded", "budget.changed"]
    assert [e["action"] for e in get("?actor=system").get_json()["data"]] == ["job.cancelled"]
    assert [e["action"] for e in get("?action=job.").get_json()["data"]] == \
        ["job.downloaded", "job.cancelled", "job.started", "job.created"]
    assert [e["action"] for e in get("?action=budget").get_json()["data"]] == ["budget.changed"]
    assert [e["action"] for e in get("?action=job.started").get_json()["data"]] == ["job.started"]
    assert [e["action"] for e in get("?job_id=tj_a").get_json()["data"]] == \
        ["job.cancelled", "job.started", "job.created"]
    # Paging: two at a time, on with next_before, until it says there is no more.
    seen, cursor = [], ""
    while True:
        page = get(f"?limit=2{cursor}").get_json()
        seen += [e["id"] for e in page["data"]]
        if page["next_before"] is None:
            break
        cursor = f"&before={page['next_before']}"
    assert len(seen) == 5 and seen == sorted(seen, reverse=True) and seen[-1] == old.id

    # Bounded, and every bad filter named.
    for query, field in (("?limit=501", "limit"), ("?limit=0", "limit"), ("?action=job.sneezed", "action"),
                         ("?since=yesterday", "since"), (f"?since={since}&until={since}", "until"),
                         ("?before=-1", "before"), ("?actor=" + "x" * 321, "actor"), ("?colour=red", "colour")):
        r = get(query)
        assert r.status_code == 400 and r.get_json()["error"]["field"] == field, (query, r.get_json())
    assert "job.started" in get("?action=job.sneezed").get_json()["error"]["message"]
    # Admins only.
    for who in (people["owner"], people["reviewer"]):
        r = client.get("/api/audit", headers=who)
        assert r.status_code == 403 and "admins" in r.get_json()["error"]["message"]
    assert client.get("/api/audit").status_code == 401


def test_entries_are_append_only(app, people):
    entry = _seed(db.session.get(User, people["owner_id"]), "job.created", utcnow(), "tj_x", name="x")
    entry.action = "job.deleted"
    with pytest.raises(RuntimeError, match="append-only"):
        db.session.flush()
    db.session.rollback()
    db.session.delete(db.session.get(AuditEntry, entry.id))
    with pytest.raises(RuntimeError, match="append-only"):
        db.session.flush()
    db.session.rollback()
    assert db.session.get(AuditEntry, entry.id).action == "job.created"
    with pytest.raises(ValueError, match="unknown audit action"):
        audit.record("job.sneezed", actor=None, target_type="job", target_id="tj_x")


# ---------------------------------------------------------------------- the console
def _console(app, make_person, email, role) -> Console:
    make_person(email, role)
    return Console(app).login(email)


def test_the_job_page_shows_its_activity_newest_first(app, make_person, people, small_sample):
    owner = db.session.get(User, people["owner_id"])
    owner.set_password("correct-horse-battery")
    db.session.commit()
    job = _job(owner, small_sample, completed=False, name="watched run")
    console = Console(app).login("owner@example.com")
    assert console.post(f"/jobs/{job.id}/start").status_code == 302
    console.get(f"/jobs/{job.id}")
    assert console.post(f"/jobs/{job.id}/cancel").status_code == 302
    html = console.get(f"/jobs/{job.id}").get_data(as_text=True)
    section = html[html.index('id="activity"'):]
    section = section[:section.index("</section>")]
    order = [section.index(text) for text in ("cancelled it (it was queued)", "started it",
                                              "created the job “watched run”")]
    assert order == sorted(order), section
    assert section.count("owner@example.com") == 3


def test_the_audit_page_filters_pages_and_exports_csv_for_admins(app, make_person, people):
    owner = db.session.get(User, people["owner_id"])
    now = utcnow()
    for i in range(55):
        _seed(owner, "job.started", now - timedelta(minutes=i + 5), f"tj_{i:03d}")
    _seed(owner, "job.created", now - timedelta(minutes=1), "tj_evil", name="=HYPERLINK(\"http://x\",\"y\")")
    _seed(None, "budget.changed", now, limit_usd={"from": 500.0, "to": 600.0})
    admin = _console(app, make_person, "boss@example.com", "admin")
    html = admin.get("/audit").get_data(as_text=True)
    assert html.count("data-entry-id=") == 50
    assert "set the monthly budget from $500.00 to $600.00" in html and "the system" in html
    older = admin.get(re.search(r'id="older" href="([^"]+)"', html).group(1).replace("&amp;", "&"))
    assert older.get_data(as_text=True).count("data-entry-id=") == 7 and 'id="older"' not in older.get_data(
        as_text=True)
    only = admin.get("/audit?action=budget.").get_data(as_text=True)
    assert only.count("data-entry-id=") == 1
    day, yesterday = now.date().isoformat(), (now - timedelta(days=1)).date().isoformat()
    assert admin.get(f"/audit?from={yesterday}&to={day}&actor=owner@example.com").get_data(as_text=True) \
        .count("data-entry-id=") == 50                      # 56 of them, a page of 50
    assert admin.get(f"/audit?to={(now - timedelta(days=2)).date().isoformat()}").get_data(as_text=True) \
        .count("data-entry-id=") == 0
    bad = admin.get("/audit?to=soon")
    assert bad.status_code == 400 and "is not a date" in bad.get_data(as_text=True)

    r = admin.get("/audit/export.csv?action=job.")
    assert r.status_code == 200 and r.mimetype == "text/csv" and r.headers["X-Export-Rows"] == "56"
    rows = list(csv.reader(io.StringIO(r.get_data(as_text=True))))
    assert rows[0] == list(audit.CSV_FIELDS) and len(rows) == 57
    evil = next(row for row in rows if row[6] == "tj_evil")
    assert evil[2] == "owner@example.com" and evil[3] == "job.created"
    assert evil[7].startswith('{"name":"=HYPERLINK')     # inside JSON text, which no spreadsheet runs
    assert not [cell for row in rows[1:] for cell in row if cell.startswith(("=", "+", "-", "@"))]

    owner.set_password("correct-horse-battery")
    db.session.commit()
    engineer = Console(app).login("owner@example.com")
    for path in ("/audit", "/audit/export.csv"):
        assert engineer.get(path).status_code == 403
    assert 'href="/audit"' not in engineer.get("/jobs").get_data(as_text=True)
    assert 'href="/audit"' in admin.get("/jobs").get_data(as_text=True)


def test_the_csv_guards_every_text_cell_against_formulas(app, people):
    owner = db.session.get(User, people["owner_id"])
    owner.email = "=cmd@example.com"
    entry = _seed(owner, "job.created", utcnow(), "+tj_1", name="@SUM(A1)")
    text = audit.csv_text([entry])
    [row] = list(csv.reader(io.StringIO(text)))[1:]
    assert row[2] == "'=cmd@example.com" and row[6] == "'+tj_1" and row[5] == "'+tj_1"
    assert row[7] == '{"name":"@SUM(A1)"}'      # a JSON object's text starts with "{": no formula
