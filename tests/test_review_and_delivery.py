"""Blind review, the quality gate, the validation report's versions and share links,
through the JSON API, on Postgres and SQLite.

A completed job's evaluation is written to storage as the handler leaves it
(``tests/test_console_evaluation.py``'s fabricated one: 6 scenarios, 23 held-out turns)."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
from rq import SimpleWorker

from control.extensions import db
from control.models import Review, User, utcnow
from control.services.queue import get_queue, redis_connection
from tests.test_console_evaluation import _job, _store_evaluation

CRITERIA = ("empathy", "clarity", "appropriateness")


@pytest.fixture
def people(app, make_user):
    owner_id, owner = make_user("owner@example.com", "engineer")
    _, first = make_user("rita@example.com", "reviewer")
    _, second = make_user("raj@example.com", "reviewer")
    _, admin = make_user("ada@example.com", "admin")
    return {"owner": owner, "owner_id": owner_id, "first": first, "second": second, "admin": admin}


@pytest.fixture
def evaluated(people, small_sample):
    job = _job(db.session.get(User, people["owner_id"]), small_sample, completed=True)
    _store_evaluation(job)
    return job.id


def _review_everything(client, job_id, who, *, adapter_score, base_score, brand_score):
    """Score every EI item (the adapter's answer ``adapter_score``, the base's ``base_score``,
    preferring the adapter) and every brand-voice item, as the items are shown."""
    labels = {}
    while True:
        page = client.get(f"/api/training/jobs/{job_id}/reviews/next?suite=ei", headers=who).get_json()
        item = page["item"]
        if item is None:
            break
        assert set(item["answers"]) == {"A", "B"} and "base" not in item and "adapter" not in item
        a_is_adapter = item["answers"]["A"].startswith("Adapter")   # the fabricated answers say so
        labels[item["id"]] = "A" if a_is_adapter else "B"
        score = {label: {c: (adapter_score if (label == "A") == a_is_adapter else base_score) for c in CRITERIA}
                 for label in ("A", "B")}
        r = client.post(f"/api/training/jobs/{job_id}/reviews", headers=who, json={
            "suite": "ei", "item_id": item["id"], "run": page["run"], "answers": score,
            "preference": labels[item["id"]]})
        assert r.status_code == 200, r.get_json()
    while True:
        page = client.get(f"/api/training/jobs/{job_id}/reviews/next?suite=brand_voice", headers=who).get_json()
        if page["item"] is None:
            break
        scores = {c["id"]: brand_score for c in page["item"]["characteristics"]}
        if page["progress"]["done"] == 0:
            scores["warmth"] = 2                                        # one answer flagged
        r = client.post(f"/api/training/jobs/{job_id}/reviews", headers=who, json={
            "suite": "brand_voice", "item_id": page["item"]["id"], "scores": scores})
        assert r.status_code == 200, r.get_json()
    return labels


def test_two_reviewers_score_blind_and_the_measures_agreement_and_gate_follow(app, client, people, evaluated):
    job_id = evaluated
    # only reviewers and admins review; the owner (an engineer) is told who may
    r = client.get(f"/api/training/jobs/{job_id}/reviews/next", headers=people["owner"])
    assert r.status_code == 403 and "reviewer role" in r.get_json()["error"]["message"]
    ev = client.get(f"/api/training/jobs/{job_id}/evaluation", headers=people["owner"]).get_json()
    statuses = {m["id"]: m["status"] for m in ev["measures"]}
    assert statuses["emotional_intelligence"] == statuses["brand_voice"] == "waiting_for_review"

    first = _review_everything(client, job_id, people["first"], adapter_score=4, base_score=2, brand_score=5)
    second = _review_everything(client, job_id, people["second"], adapter_score=5, base_score=2, brand_score=4)
    assert len(first) == len(second) == 6
    # stored by model, never by label
    rows = db.session.query(Review).filter_by(suite="ei").all()
    assert len(rows) == 12 and all(set(r.scores) == {"base", "adapter"} and r.preference == "adapter" for r in rows)

    ev = client.get(f"/api/training/jobs/{job_id}/evaluation", headers=people["owner"]).get_json()
    by_id = {m["id"]: m for m in ev["measures"]}
    ei = by_id["emotional_intelligence"]
    assert ei["base"] == 2.0 and ei["adapter"] == 4.5 and ei["improvement"] == 125.0
    assert ei["status"] == "met" and ei["scored_by"] == "people" and ei["n"] == 6
    assert ei["interval"] == [125.0, 125.0]           # every scenario scored alike
    assert "2 reviewers" in ei["note"] and "Krippendorff" in ei["note"]
    assert ev["reviews"]["ei"]["win_rate"]["rate"] == 1.0
    assert ev["reviews"]["ei"]["agreement"] is not None and -1 <= ev["reviews"]["ei"]["agreement"] <= 1
    brand = by_id["brand_voice"]
    assert brand["n"] == 23                          # every held-out turn there is (fewer than 30)
    assert 4.0 < brand["adapter"] < 4.5 and brand["status"] in ("met", "not_met")
    flagged = ev["reviews"]["brand"]["flagged"]
    assert 1 <= len(flagged) <= 2 and all(f["low"] == {"Warmth": 2} for f in flagged)   # each one's first

    # a bad score names its field
    item = client.get(f"/api/training/jobs/{job_id}/reviews/next?suite=ei&position=1",
                      headers=people["first"]).get_json()["item"]
    for body, field in (({"answers": {"A": {"empathy": 6, "clarity": 1, "appropriateness": 1},
                                      "B": {"empathy": 1, "clarity": 1, "appropriateness": 1}},
                          "preference": "A"}, "answers.A.empathy"),
                        ({"answers": {"A": {"empathy": 3, "clarity": 1}, "B": {"empathy": 1, "clarity": 1,
                                                                               "appropriateness": 1}},
                          "preference": "A"}, "answers.A.appropriateness"),
                        ({"scores": {"warmth": 3}}, "answers.A")):
        r = client.post(f"/api/training/jobs/{job_id}/reviews", headers=people["first"],
                        json={"suite": "ei", "item_id": item["id"], **body})
        assert r.status_code == 400 and r.get_json()["error"]["field"] == field, (field, r.get_json())
    assert item["saved"]["preference"] in ("A", "B")  # its saved scores come back in its labels
    assert client.get(f"/api/training/jobs/{job_id}/reviews/next?suite=ei&position=1",
                      headers=people["first"]).get_json()["final"] is True
    # once every scenario is scored the figures by model are in view: the scores are final
    r = client.post(f"/api/training/jobs/{job_id}/reviews", headers=people["first"], json={
        "suite": "ei", "item_id": item["id"], "preference": "tie",
        "answers": {k: {c: 3 for c in CRITERIA} for k in ("A", "B")}})
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "review_complete"

    # the gate: perplexity met, forgetting not (90% kept); approving must name it
    gate = client.get(f"/api/training/jobs/{job_id}/decisions", headers=people["owner"]).get_json()
    assert {i["id"]: i["status"] for i in gate["items"]}["forgetting"] == "not_met"
    assert gate["standing"] == "not_met" and gate["decision"] is None
    r = client.post(f"/api/training/jobs/{job_id}/decisions", headers=people["owner"],
                    json={"decision": "approved", "reason": "fine"})
    assert r.status_code == 403
    r = client.post(f"/api/training/jobs/{job_id}/decisions", headers=people["admin"],
                    json={"decision": "approved", "reason": "Looks good to me"})
    assert r.status_code == 400 and "Forgetting check" in r.get_json()["error"]["message"]
    r = client.post(f"/api/training/jobs/{job_id}/decisions", headers=people["admin"], json={
        "decision": "approved", "reason": "Retention is 90%, under target; the client accepts it for tone."})
    assert r.status_code == 201, r.get_json()
    decision = r.get_json()
    assert decision["decided_by_email"] == "ada@example.com" and decision["measures"]
    client.post(f"/api/training/jobs/{job_id}/decisions", headers=people["first"],
                json={"decision": "rejected", "reason": "Second thoughts on retention"})
    gate = client.get(f"/api/training/jobs/{job_id}/decisions", headers=people["owner"]).get_json()
    assert [d["decision"] for d in gate["history"]] == ["rejected", "approved"]
    assert gate["delivery_status"] == "rejected"
    listed = client.get("/api/training/jobs?delivery=rejected", headers=people["owner"]).get_json()
    assert [j["id"] for j in listed["data"]] == [job_id]
    assert client.get("/api/training/jobs?delivery=approved", headers=people["owner"]).get_json()["total"] == 0


def test_each_reviewer_sees_the_answers_in_an_order_and_labelling_of_their_own(app):
    from control.services.reviews import adapter_label, ordered

    class Item:
        def __init__(self, i):
            self.id = f"ei-{i:03d}"
    items = [Item(i) for i in range(50)]
    first = [adapter_label("usr_1", "training", i.id) for i in items]
    second = [adapter_label("usr_2", "training", i.id) for i in items]
    assert first != second and 10 < first.count("A") < 40          # about half A, and not alike
    assert first == [adapter_label("usr_1", "training", i.id) for i in items]   # stable for a reviewer
    assert [i.id for i in ordered("usr_1", "training", items)] != [i.id for i in ordered("usr_2", "training", items)]


def _build_reports(app):
    SimpleWorker([get_queue()], connection=redis_connection()).work(burst=True)


@pytest.mark.parametrize("app", ["postgres"], indirect=True)
def test_the_report_is_versioned_and_shared_by_links_that_count_views_and_can_be_withdrawn(
        app, client, people, evaluated, monkeypatch):
    job_id = evaluated
    r = client.get(f"/api/training/jobs/{job_id}/download/validation-report", headers=people["owner"])
    assert r.status_code == 409 and "no validation report yet" in r.get_json()["error"]["message"]
    early = client.post(f"/api/training/jobs/{job_id}/share", headers=people["owner"], json={}).get_json()
    r = app.test_client().get(early["url"].split("localhost", 1)[1])
    assert r.status_code == 409 and "not ready yet" in r.get_data(as_text=True)   # nothing built to show
    client.delete(f"/api/training/jobs/{job_id}/share/{early['id']}", headers=people["owner"])
    from control.services.queue import enqueue_report
    enqueue_report(job_id, "evaluation")
    assert enqueue_report(job_id, "evaluation") is None          # one build waits at a time
    _build_reports(app)
    r = client.get(f"/api/training/jobs/{job_id}/download/validation-report", headers=people["owner"])
    assert r.status_code == 200 and r.mimetype == "application/pdf" and r.data.startswith(b"%PDF")
    assert "v1.pdf" in r.headers["Content-Disposition"]
    enqueue_report(job_id, "request")
    _build_reports(app)                                             # nothing changed: no new version
    client.post(f"/api/training/jobs/{job_id}/decisions", headers=people["admin"],
                json={"decision": "rejected", "reason": "Retention is too low for this client"})
    _build_reports(app)                                             # the decision made version 2
    r = client.get(f"/api/training/jobs/{job_id}/download/validation-report", headers=people["owner"])
    assert "v2.pdf" in r.headers["Content-Disposition"]
    old = client.get(f"/api/training/jobs/{job_id}/download/validation-report?version=1", headers=people["owner"])
    assert old.status_code == 200 and "v1.pdf" in old.headers["Content-Disposition"]
    assert client.get(f"/api/training/jobs/{job_id}/download/validation-report?version=7",
                      headers=people["owner"]).status_code == 404
    summary = client.get(f"/api/training/jobs/{job_id}/download/validation-report?format=json",
                         headers=people["owner"])
    assert summary.status_code == 404 and "no evaluation summary" in summary.get_json()["error"]["message"]

    # share links: bounded lifetime, a public page that counts views, 410 once withdrawn
    r = client.post(f"/api/training/jobs/{job_id}/share", headers=people["owner"], json={"expires_in_days": 91})
    assert r.status_code == 400 and r.get_json()["error"]["field"] == "expires_in_days"
    link = client.post(f"/api/training/jobs/{job_id}/share", headers=people["owner"], json={}).get_json()
    assert link["state"] == "active" and link["views"] == 0
    path = link["url"].split("localhost", 1)[1]
    token = path.rsplit("/", 1)[1]
    assert len(token) >= 22                                        # at least 128 bits
    anonymous = app.test_client()
    page = anonymous.get(path)
    assert page.status_code == 200 and "Executive summary" in page.get_data(as_text=True)
    assert page.headers["Referrer-Policy"] == "no-referrer" and "no-store" in page.headers["Cache-Control"]
    pdf = anonymous.get(path + "/report.pdf")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")
    listed = client.get(f"/api/training/jobs/{job_id}/share", headers=people["owner"]).get_json()["data"]
    assert listed[0]["views"] == 2 and "url" not in listed[0]
    assert token not in str(db.session.execute(db.text("SELECT token_hash FROM share_links")).all())
    assert anonymous.get("/share/not-a-real-token").status_code == 404

    revoked = client.delete(f"/api/training/jobs/{job_id}/share/{link['id']}", headers=people["owner"]).get_json()
    assert revoked["data"][0]["state"] == "revoked"
    gone = anonymous.get(path)
    assert gone.status_code == 410 and "revoked" in gone.get_data(as_text=True)

    second = client.post(f"/api/training/jobs/{job_id}/share", headers=people["owner"],
                         json={"expires_in_days": 1}).get_json()
    second_path = second["url"].split("localhost", 1)[1]
    assert anonymous.get(second_path).status_code == 200
    later = utcnow() + timedelta(days=1, minutes=1)
    monkeypatch.setattr("control.models.delivery.utcnow", lambda: later)
    gone = anonymous.get(second_path)
    assert gone.status_code == 410 and "expired" in gone.get_data(as_text=True)
    # opening shared reports is bounded per address
    app.config["SHARE_RATE_LIMIT"] = "3 per minute"
    answers = [anonymous.get(second_path) for _ in range(4)]
    assert {a.status_code for a in answers} <= {410, 429} and answers[-1].status_code == 429
    assert answers[-1].headers["Retry-After"] == "60" and "Too many requests" in answers[-1].get_data(as_text=True)


def test_an_admin_gives_the_reviewer_role_from_the_command_line_and_review_opens(app, client, monkeypatch,
                                                                                 make_user, evaluated):
    from tests.test_credentials import cli
    user_id, headers = make_user("eve@example.com", "engineer")
    assert client.get(f"/api/training/jobs/{evaluated}/reviews/next", headers=headers).status_code == 403
    r = cli(app, monkeypatch, "users", "set-role", "eve@example.com", "reviewer")
    assert r.exit_code == 0 and "engineer -> reviewer" in r.output, r.output
    page = client.get(f"/api/training/jobs/{evaluated}/reviews/next", headers=headers).get_json()
    assert page["progress"] == {"done": 0, "total": 6} and page["position"] == 1
    r = cli(app, monkeypatch, "users", "set-role", "eve@example.com", "owner")
    assert r.exit_code != 0 and "admin" in r.output


def test_a_reviewer_half_way_through_sees_no_figures_by_model_and_the_gate_waits_for_every_scenario(
        app, client, people, evaluated):
    job_id, admin = evaluated, people["admin"]           # an admin reviews, and sees every page
    page = client.get(f"/api/training/jobs/{job_id}/reviews/next?suite=ei", headers=admin).get_json()
    a_is_adapter = page["item"]["answers"]["A"].startswith("Adapter")
    best, worst = {c: 5 for c in CRITERIA}, {c: 1 for c in CRITERIA}
    r = client.post(f"/api/training/jobs/{job_id}/reviews", headers=admin, json={
        "suite": "ei", "item_id": page["item"]["id"], "preference": "A",
        "answers": {"A": best if a_is_adapter else worst, "B": worst if a_is_adapter else best}})
    assert r.status_code == 200

    mine = client.get(f"/api/training/jobs/{job_id}/evaluation", headers=admin).get_json()
    ei = {m["id"]: m for m in mine["measures"]}["emotional_intelligence"]
    assert ei["base"] is None and ei["improvement"] is None and "finish it" in ei["note"]
    assert mine["reviews"]["ei"] == {"hidden": True, "note": ei["note"]}
    r = client.get(f"/api/training/jobs/{job_id}/evaluation/samples?suite=ei", headers=admin)
    assert r.status_code == 403 and "finish your blind review" in r.get_json()["error"]["message"]
    assert client.get(f"/api/training/jobs/{job_id}/reviews", headers=admin).get_json()["ei"]["hidden"] is True

    theirs = client.get(f"/api/training/jobs/{job_id}/evaluation", headers=people["owner"]).get_json()
    ei = {m["id"]: m for m in theirs["measures"]}["emotional_intelligence"]
    assert ei["improvement"] == 400.0 and ei["status"] == "waiting_for_review"     # 1 of 6 is not enough
    assert "1 of 6 scenarios scored so far" in ei["note"]
    gate = client.get(f"/api/training/jobs/{job_id}/decisions", headers=people["owner"]).get_json()
    assert {i["id"]: i["status"] for i in gate["items"]}["emotional_intelligence"] == "waiting_for_review"


def test_older_summaries_and_perplexity_only_evaluations_read_back_with_the_right_statuses(app, client, people,
                                                                                           evaluated):
    from control.models import TrainingJob
    from control.services.storage import get_storage
    from shared.storage.layout import JobLayout
    job = db.session.get(TrainingJob, evaluated)
    storage, layout = get_storage(), JobLayout(job.storage_prefix).evaluation
    text = storage.get_bytes(layout.summary).decode().replace('"waiting_for_review"', '"pending_review"')
    summary = json.loads(text)
    assert "pending_review" in text                        # as the handler wrote it before the rename
    storage.put_bytes(layout.summary, text.encode())
    ev = client.get(f"/api/training/jobs/{evaluated}/evaluation", headers=people["owner"])
    assert ev.status_code == 200
    assert {m["id"]: m["status"] for m in ev.get_json()["measures"]}["brand_voice"] == "waiting_for_review"

    summary["suites"] = {}                                  # a perplexity-only run answered nothing
    summary["size"] = "perplexity"
    storage.put_bytes(layout.summary, json.dumps(summary).encode())
    for suite in ("ei", "heldout"):
        storage.delete(layout.samples(suite))
    ev = client.get(f"/api/training/jobs/{evaluated}/evaluation", headers=people["owner"]).get_json()
    statuses = {m["id"]: m["status"] for m in ev["measures"]}
    assert statuses["emotional_intelligence"] == statuses["brand_voice"] == "not_measured"
    gate = client.get(f"/api/training/jobs/{evaluated}/decisions", headers=people["owner"]).get_json()
    assert gate["standing"] == "not_met"


def test_reviewers_list_every_users_jobs_waiting_for_a_decision(app, client, people, evaluated):
    waiting = client.get("/api/training/jobs?for_review=true", headers=people["first"]).get_json()
    assert [j["id"] for j in waiting["data"]] == [evaluated]        # the owner's job, not theirs
    r = client.get("/api/training/jobs?for_review=true", headers=people["owner"])
    assert r.status_code == 403
    client.post(f"/api/training/jobs/{evaluated}/decisions", headers=people["first"],
                json={"decision": "rejected", "reason": "Retention too low"})
    assert client.get("/api/training/jobs?for_review=true", headers=people["first"]).get_json()["total"] == 0
