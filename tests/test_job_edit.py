"""A job's name, description, notes and tags after creation, on Postgres and SQLite:
``PATCH /api/training/jobs/<id>`` changes those four and refuses any other field, naming
it; the bounds are the creation's; the changes stay searchable and are on the audit trail;
the job page edits them inline (a plain form with its CSRF token). The jobs are seeded rows
(``tests/finished_runs.py``)."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from control.extensions import db
from control.models import AuditEntry, TrainingJob, User
from tests.finished_runs import seed_finished_runs
from tests.test_console import PASSWORD, Console


@pytest.fixture
def owned(app, make_user):
    """Ana's finished run A, her token, Bo's token and an admin's."""
    ana_id, ana = make_user("ana@example.com")
    _, bo = make_user("bo@example.com")
    _, admin = make_user("root@example.com", role="admin")
    [job_id] = seed_finished_runs(app, ana_id, n=1)
    return {"job": job_id, "ana": ana, "bo": bo, "admin": admin, "ana_id": ana_id}


def edits() -> list[AuditEntry]:
    return list(db.session.scalars(select(AuditEntry).where(AuditEntry.action == "job.edited").order_by(AuditEntry.id)))


def ids(client, headers, **query) -> list[str]:
    r = client.get("/api/training/jobs", headers=headers, query_string=query)
    assert r.status_code == 200, r.get_json()
    return [j["id"] for j in r.get_json()["data"]]


def test_patch_changes_the_four_fields_and_they_stay_searchable(client, owned):
    url, ana = f"/api/training/jobs/{owned['job']}", owned["ana"]
    before = client.get(url, headers=ana).get_json()
    r = client.patch(url, headers=ana, json={"name": "run A (kept)", "description": "the baseline",
                                             "notes": "loss plateaued after step 40\nnext: lower lr",
                                             "tags": ["baseline", "harbor-lane"]})
    assert r.status_code == 200, r.get_json()
    after = r.get_json()
    assert (after["name"], after["description"], after["tags"]) == ("run A (kept)", "the baseline",
                                                                    ["baseline", "harbor-lane"])
    assert after["notes"].startswith("loss plateaued")
    unchanged = {k for k in before if k not in ("name", "description", "notes", "tags", "updated_at")}
    assert {k: after[k] for k in unchanged} == {k: before[k] for k in unchanged}
    assert client.get(url, headers=ana).get_json()["name"] == "run A (kept)"

    for q in ("plateaued", "harbor-lane", "BASELINE", "kept"):       # notes, tags, description, name
        assert ids(client, ana, q=q) == [owned["job"]], q
    assert ids(client, ana, q="compare-seed") == []                   # the old tag is gone
    assert ids(client, ana, tag="harbor-lane") == [owned["job"]]

    [entry] = edits()
    assert (entry.actor_email, entry.training_job_id, entry.details["fields"]) == \
        ("ana@example.com", owned["job"], ["name", "description", "notes", "tags"])
    assert entry.details["changes"]["name"] == {"from": "run A", "to": "run A (kept)"}
    assert entry.details["changes"]["tags"] == {"from": ["compare-seed"], "to": ["baseline", "harbor-lane"]}
    assert entry.details["changes"]["notes"] == {"from_chars": 0, "to_chars": len(after["notes"])}

    # One field at a time; null clears the notes; the same values again change nothing.
    r = client.patch(url, headers=ana, json={"notes": None})
    assert r.status_code == 200 and r.get_json()["notes"] is None and r.get_json()["name"] == "run A (kept)"
    assert client.patch(url, headers=ana, json={"name": "run A (kept)"}).status_code == 200
    assert client.patch(url, headers=ana, json={}).status_code == 200
    assert [e.details["fields"] for e in edits()] == [["name", "description", "notes", "tags"], ["notes"]]


NOT_EDITABLE = {"preset": "aggressive", "status": "pending", "actual_cost": 0, "hyperparameters": {"lora_r": 4},
                "configuration": {}, "template_id": "tpl_x", "training_file_id": "file_x", "created_by": "usr_x",
                "id": "tj_other", "max_cost_usd": 5, "base_model": "embedded", "perplexity_gain_pct": 99.0}


def test_every_other_field_is_refused_naming_it_and_the_four_that_may_change(client, owned):
    url = f"/api/training/jobs/{owned['job']}"
    for field, value in NOT_EDITABLE.items():
        r = client.patch(url, headers=owned["ana"], json={"name": "renamed", field: value})
        assert r.status_code == 400, r.get_json()
        error = r.get_json()["error"]
        assert (error["code"], error["field"]) == ("not_editable", field)
        assert error["message"].startswith(f"{field}: cannot be changed")
        assert "name, description, notes and tags" in error["message"]
    r = client.patch(url, headers=owned["ana"], json={"status": "pending", "notes": "x", "preset": "aggressive"})
    assert [d["field"] for d in r.get_json()["error"]["details"]] == ["status", "preset"]
    assert client.get(url, headers=owned["ana"]).get_json()["name"] == "run A"    # nothing changed
    assert edits() == []


def test_the_bounds_are_the_creations_and_a_refusal_changes_nothing(client, owned):
    url = f"/api/training/jobs/{owned['job']}"

    def refused(body, field):
        r = client.patch(url, headers=owned["ana"], json=body)
        assert r.status_code == 400, r.get_json()
        assert r.get_json()["error"]["field"] == field, r.get_json()
        return r.get_json()["error"]["message"]

    refused({"name": ""}, "name")
    refused({"name": None}, "name")                                   # a job keeps a name
    refused({"name": "x" * 201}, "name")
    assert "control characters" in refused({"name": "run\u0000A"}, "name")
    refused({"description": "d" * 5001}, "description")
    refused({"notes": "n" * 20_001}, "notes")
    assert "at most 20" in refused({"tags": [f"t{i}" for i in range(21)]}, "tags")
    refused({"tags": ["x" * 51]}, "tags.0")
    refused({"tags": "one, two"}, "tags")
    ok = client.patch(url, headers=owned["ana"], json={"name": "n" * 200, "notes": "line\r\n\tindented",
                                                      "tags": [f"t{i}" for i in range(20)]})
    assert ok.status_code == 200 and len(ok.get_json()["tags"]) == 20
    assert len(edits()) == 1


def test_another_users_job_is_not_found_and_an_admin_may_edit_it(client, owned):
    url = f"/api/training/jobs/{owned['job']}"
    r = client.patch(url, headers=owned["bo"], json={"notes": "mine now"})
    assert r.status_code == 404
    assert client.patch("/api/training/jobs/tj_missing", headers=owned["ana"], json={"notes": "x"}).status_code == 404
    assert client.patch(url, headers=owned["admin"], json={"notes": "checked by ops"}).status_code == 200
    assert client.get(url, headers=owned["ana"]).get_json()["notes"] == "checked by ops"
    assert [e.actor_email for e in edits()] == ["root@example.com"]


def test_the_job_page_edits_them_inline_with_a_plain_form(app, owned):
    db.session.get(User, owned["ana_id"]).set_password(PASSWORD)
    db.session.commit()
    console = Console(app).login("ana@example.com")
    page_url, edit_url = f"/jobs/{owned['job']}", f"/jobs/{owned['job']}/edit"
    html = console.get(page_url).get_data(as_text=True)
    assert f'action="{edit_url}#about"' in html
    assert 'name="name" maxlength="200" required value="run A"' in html
    assert 'name="tags" value="compare-seed"' in html

    form = {"name": "run A v2", "description": "", "notes": "keep: best forgetting score", "tags": "keeper, v2"}
    assert console.post(edit_url, form, csrf=False).status_code == 400           # no CSRF token: refused
    assert db.session.get(TrainingJob, owned["job"]).name == "run A"
    r = console.post(edit_url, form)
    assert r.status_code == 302 and r.headers["Location"].endswith(f"{page_url}#about")
    db.session.expire_all()
    job = db.session.get(TrainingJob, owned["job"])
    assert (job.name, job.description, job.notes, job.tags) == ("run A v2", None, "keep: best forgetting score",
                                                                 ["keeper", "v2"])
    html = console.get(page_url).get_data(as_text=True)
    assert "Saved: name, description, notes, tags changed." in html
    assert ">keep: best forgetting score</textarea>" in html and 'value="keeper, v2"' in html

    # A refusal shows the page again with the typed values and the problem by its field.
    r = console.post(edit_url, {**form, "name": "", "notes": "typed, not lost",
                                "tags": ", ".join(f"t{i}" for i in range(21))})
    html = r.get_data(as_text=True)
    assert r.status_code == 400 and 'id="name-error"' in html and "give the job a name" in html
    assert 'id="tags-error"' in html and ">typed, not lost</textarea>" in html
    assert db.session.get(TrainingJob, owned["job"]).notes == "keep: best forgetting score"

    # Searchable in the console's list too.
    listing = console.get("/jobs?q=forgetting").get_data(as_text=True)
    assert f'href="/jobs/{owned["job"]}"' in listing
    assert f'href="/jobs/{owned["job"]}"' in console.get("/jobs?q=keeper").get_data(as_text=True)
    assert f'href="/jobs/{owned["job"]}"' not in console.get("/jobs?q=compare-seed").get_data(as_text=True)
