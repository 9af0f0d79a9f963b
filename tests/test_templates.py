"""Job templates through the JSON API and the console, on Postgres and SQLite: saved from a
finished job or from an explicit body, seen by the whole team, filling in a new job's
settings (what the request gives wins), counting their uses and the share of their jobs
that met the perplexity target (and the same per preset), deleted only by their creator or
an admin. The finished jobs are seeded as rows (``tests/finished_runs.py``); nothing trains."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from control.extensions import db
from control.models import (AuditEntry, JobTemplate, TrainingFile, TrainingFileStatus, TrainingJob, User, new_id,
                            utcnow)
from shared.evaluation.targets import PERPLEXITY_IMPROVEMENT_PCT
from tests.finished_runs import seed_finished_runs
from tests.test_console import PASSWORD, Console

TEMPLATES = "/api/training/templates"


def ready_file(user_id: str) -> str:
    """A ready dataset row with the statistics a new job's estimate reads (nothing is dispatched)."""
    row = TrainingFile(id=new_id("file"), filename="clients-v2.json", format="brightrun-lora-v4",
                       storage_key="datasets/x.json", sha256="0" * 64, size_bytes=1000,
                       status=TrainingFileStatus.READY, validated_at=utcnow(), created_by=user_id,
                       statistics={"conversations": 40, "trainable_pairs": 120, "tokens": {"folded": 60_000}})
    db.session.add(row)
    db.session.commit()
    return row.id


@pytest.fixture
def team(app, make_user):
    """Ana (who ran three finished jobs: A balanced, B aggressive, C conservative), Bo and an admin."""
    ana_id, ana = make_user("ana@example.com")
    bo_id, bo = make_user("bo@example.com")
    _, admin = make_user("root@example.com", role="admin")
    runs = seed_finished_runs(app, ana_id, n=3)
    return {"ana": ana, "bo": bo, "admin": admin, "ana_id": ana_id, "bo_id": bo_id, "runs": runs,
            "file": ready_file(ana_id), "bo_file": ready_file(bo_id)}


def entries(action: str) -> list[AuditEntry]:
    return list(db.session.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)))


EXPLICIT = {"preset": "conservative", "hyperparameters": {"num_epochs": 5, "lora_r": 4},
            "gpu": {"type": "A100_80GB", "pricing": "on_demand"}, "max_cost_usd": 12.5,
            "evaluation": {"size": "perplexity", "max_new_tokens": 64}}


def _explicit(client, headers, name="careful, long", **config):
    r = client.post(TEMPLATES, headers=headers, json={"name": name, "description": "for small datasets",
                                                       "configuration": {**EXPLICIT, **config}})
    assert r.status_code == 201, r.get_json()
    return r.get_json()


# ---------------------------------------------------------------------------- saving

def test_a_job_saved_as_a_template_keeps_its_settings_and_the_whole_team_sees_it(client, team):
    run_b = team["runs"][1]
    r = client.post(f"/api/training/jobs/{run_b}/template", headers=team["ana"],
                    json={"name": "aggressive, lr 5e-4", "description": "won on harbor lane"})
    assert r.status_code == 201, r.get_json()
    saved = r.get_json()
    assert saved["configuration"] == {
        "preset": "aggressive", "hyperparameters": {"learning_rate": 5e-4, "lora_r": 32},
        "gpu": {"type": "H100_PCIE", "pricing": "spot"}, "base_model": "embedded", "method": "lora",
        "evaluation": {"size": "quick", "max_new_tokens": 256}}
    assert (saved["source_job_id"], saved["created_by_email"], saved["uses"]) == (run_b, "ana@example.com", 0)

    listed = client.get(TEMPLATES, headers=team["bo"]).get_json()       # another engineer sees it
    assert [t["name"] for t in listed["data"]] == ["aggressive, lr 5e-4"] and listed["total"] == 1
    assert client.get(f"{TEMPLATES}/{saved['id']}", headers=team["bo"]).get_json()["description"] == "won on harbor lane"
    [entry] = entries("template.created")
    assert (entry.actor_email, entry.target_id, entry.training_job_id) == ("ana@example.com", saved["id"], run_b)

    # Bo cannot save a template of Ana's job (he cannot see it); a name is unique.
    assert client.post(f"/api/training/jobs/{run_b}/template", headers=team["bo"],
                       json={"name": "mine"}).status_code == 404
    dup = client.post(f"/api/training/jobs/{team['runs'][0]}/template", headers=team["ana"],
                      json={"name": "aggressive, lr 5e-4"})
    assert dup.status_code == 409 and dup.get_json()["error"]["code"] == "duplicate"
    assert len(entries("template.created")) == 1


def test_a_template_from_an_explicit_body_is_checked_as_a_job_would_be(client, team):
    saved = _explicit(client, team["bo"])
    assert saved["configuration"] == {**EXPLICIT, "gpu": {"type": "A100_80GB", "pricing": "on_demand"}}
    assert saved["source_job_id"] is None

    def refused(config, field, status=400):
        r = client.post(TEMPLATES, headers=team["bo"], json={"name": "x", "configuration": config})
        assert r.status_code == status, r.get_json()
        assert r.get_json()["error"]["field"] == field, r.get_json()
        return r.get_json()["error"]["message"]

    assert "unknown GPU type 'TPU'" in refused({"gpu": {"type": "TPU"}}, "configuration.gpu.type")
    assert "not allowed" in refused({"base_model": "someone/else"}, "configuration.base_model")
    assert "rubric" in refused({"rubric_id": "rub_nope"}, "configuration.rubric_id")
    refused({"hyperparameters": {"lora_r": 0}}, "configuration.hyperparameters.lora_r")
    refused({"training_file_id": "f"}, "configuration.training_file_id")       # not a template's
    refused({"evaluation": {"prompts_file_id": "file_nope"}}, "configuration.evaluation.prompts_file_id")
    r = client.post(TEMPLATES, headers=team["bo"], json={"configuration": {}})
    assert r.status_code == 400 and r.get_json()["error"]["field"] == "name"
    assert len(entries("template.created")) == 1                              # none for the refusals


# ---------------------------------------------------------------------------- starting from one

def test_a_job_from_a_template_takes_its_settings_and_what_the_request_gives_wins(client, team):
    tpl = _explicit(client, team["bo"])
    # Ana starts from Bo's template (templates are the team's).
    r = client.post("/api/training/jobs", headers=team["ana"],
                    json={"training_file_id": team["file"], "template_id": tpl["id"]})
    assert r.status_code == 201, r.get_json()
    job = r.get_json()
    conf = job["configuration"]
    assert (job["preset"], job["gpu_type"], job["gpu_pricing_tier"], job["max_cost_usd"], job["template_id"]) == \
        ("conservative", "A100_80GB", "on_demand", 12.5, tpl["id"])
    assert conf["overrides"] == {"num_epochs": 5, "lora_r": 4}
    assert conf["hyperparameters"]["learning_rate"] == 1e-4                 # the conservative preset's
    assert (conf["evaluation"]["size"], conf["evaluation"]["max_new_tokens"]) == ("perplexity", 64)

    r = client.post("/api/training/jobs", headers=team["ana"], json={
        "training_file_id": team["file"], "template_id": tpl["id"], "preset": "aggressive",
        "hyperparameters": {"num_epochs": 2, "lora_r": None}, "gpu": {"pricing": "spot"},
        "max_cost_usd": None, "evaluation": {"max_new_tokens": 128}, "name": "mine"})
    assert r.status_code == 201, r.get_json()
    job = r.get_json()
    assert (job["preset"], job["gpu_type"], job["gpu_pricing_tier"], job["max_cost_usd"], job["name"]) == \
        ("aggressive", "A100_80GB", "spot", None, "mine")
    assert job["configuration"]["overrides"] == {"num_epochs": 2}            # lora_r: the preset's again
    assert job["configuration"]["hyperparameters"]["lora_r"] == 32
    assert job["configuration"]["evaluation"] == {"size": "perplexity", "max_new_tokens": 128,
                                                  "prompts_file_id": None}

    before = db.session.scalar(select(db.func.count(TrainingJob.id)))
    r = client.post("/api/training/jobs", headers=team["ana"],
                    json={"training_file_id": team["file"], "template_id": "tpl_missing"})
    assert r.status_code == 404 and "'tpl_missing'" in r.get_json()["error"]["message"]
    assert "template" in r.get_json()["error"]["message"]
    assert db.session.scalar(select(db.func.count(TrainingJob.id))) == before


def test_use_counts_and_the_share_of_jobs_that_met_the_perplexity_target(client, team):
    assert PERPLEXITY_IMPROVEMENT_PCT == 30.0                               # the documents' target
    run_a = team["runs"][0]
    used = client.post(f"/api/training/jobs/{run_a}/template", headers=team["ana"], json={"name": "A"}).get_json()
    idle = _explicit(client, team["ana"], name="B")
    gains = [30.0, 12.0, None]                                              # at the target, below, not evaluated
    for gain in gains:
        r = client.post("/api/training/jobs", headers=team["ana"],
                        json={"training_file_id": team["file"], "template_id": used["id"]})
        job = db.session.get(TrainingJob, r.get_json()["id"])
        job.perplexity_gain_pct = gain
    db.session.commit()

    listed = client.get(TEMPLATES, headers=team["bo"]).get_json()
    by_name = {t["name"]: t for t in listed["data"]}
    assert {k: by_name["A"][k] for k in ("uses", "evaluated", "met_target", "share_met_target")} == \
        {"uses": 3, "evaluated": 2, "met_target": 1, "share_met_target": 0.5}
    assert (by_name["B"]["uses"], by_name["B"]["share_met_target"]) == (0, None)
    assert client.get(f"{TEMPLATES}/{used['id']}", headers=team["bo"]).get_json()["uses"] == 3
    assert listed["target_pct"] == 30.0
    # Per preset, over all jobs: run A (31.5%) and the three balanced jobs from the template;
    # run B (38.2%) aggressive; run C (24.0%) conservative.
    presets = {p["preset"]: p for p in listed["presets"]}
    assert [p["preset"] for p in listed["presets"]] == ["conservative", "balanced", "aggressive"]
    assert presets["balanced"] == {"preset": "balanced", "jobs": 4, "evaluated": 3, "met_target": 2,
                                   "share_met_target": 0.6667}
    assert (presets["aggressive"]["share_met_target"], presets["conservative"]["share_met_target"]) == (1.0, 0.0)
    assert idle["uses"] == 0


# ---------------------------------------------------------------------------- changing and deleting

def test_only_its_creator_or_an_admin_renames_or_deletes_a_template(client, team):
    tpl = client.post(f"/api/training/jobs/{team['runs'][0]}/template", headers=team["ana"],
                      json={"name": "balanced v1"}).get_json()
    job = client.post("/api/training/jobs", headers=team["ana"],
                      json={"training_file_id": team["file"], "template_id": tpl["id"]}).get_json()
    url = f"{TEMPLATES}/{tpl['id']}"

    r = client.delete(url, headers=team["bo"])
    assert r.status_code == 403 and "creator or an admin" in r.get_json()["error"]["message"]
    assert client.patch(url, headers=team["bo"], json={"name": "bo's now"}).status_code == 403
    r = client.patch(url, headers=team["ana"], json={"name": "balanced v2", "description": "renamed"})
    assert r.status_code == 200 and r.get_json()["name"] == "balanced v2"
    [changed] = entries("template.changed")
    assert changed.details["changes"]["name"] == {"from": "balanced v1", "to": "balanced v2"}
    assert client.get(url, headers=team["bo"]).get_json()["name"] == "balanced v2"

    assert client.delete(url, headers=team["admin"]).status_code == 204
    assert client.get(url, headers=team["ana"]).status_code == 404
    assert client.delete(url, headers=team["ana"]).status_code == 404
    [deleted] = entries("template.deleted")
    assert (deleted.actor_email, deleted.details["name"], deleted.details["uses"]) == \
        ("root@example.com", "balanced v2", 1)
    kept = client.get(f"/api/training/jobs/{job['id']}", headers=team["ana"]).get_json()
    assert kept["template_id"] == tpl["id"] and kept["preset"] == "balanced"   # the job keeps what it ran with
    assert db.session.get(JobTemplate, tpl["id"]) is None


# ---------------------------------------------------------------------------- the console

def test_the_console_saves_a_job_as_a_template_lists_it_and_starts_a_job_from_it(app, client, team, make_person):
    make_person("carla@example.com")
    carla = Console(app).login("carla@example.com")
    run_b = db.session.get(TrainingJob, team["runs"][1])
    db.session.get(User, team["ana_id"]).set_password(PASSWORD)
    db.session.commit()
    ana_console = Console(app).login("ana@example.com")

    page = ana_console.get(f"/jobs/{run_b.id}").get_data(as_text=True)
    assert f'href="/jobs/{run_b.id}/template"' in page
    form = ana_console.get(f"/jobs/{run_b.id}/template").get_data(as_text=True)
    assert "aggressive preset" in form and "learning_rate 0.0005, lora_r 32" in form
    r = ana_console.post(f"/jobs/{run_b.id}/template", {"name": "", "description": ""})
    assert r.status_code == 400 and "give the template a name" in r.get_data(as_text=True)
    r = ana_console.post(f"/jobs/{run_b.id}/template", {"name": "B's recipe", "description": "the winner"})
    assert r.status_code == 302, r.get_data(as_text=True)
    tpl = db.session.scalar(select(JobTemplate).where(JobTemplate.name == "B's recipe"))
    r = ana_console.post(f"/jobs/{run_b.id}/template", {"name": "B's recipe"})
    assert r.status_code == 409 and "already exists" in r.get_data(as_text=True)

    # Carla sees it, with no delete button (not hers); the per-preset shares are shown.
    listing = carla.get("/templates").get_data(as_text=True)
    assert "B&#39;s recipe" in listing and "the winner" in listing and "ana@example.com" in listing
    assert f'action="/templates/{tpl.id}/delete"' not in listing
    assert re.search(r'data-preset="aggressive">.*?<strong>100%</strong>', listing, re.S)
    assert carla.post(f"/templates/{tpl.id}/delete").status_code == 403

    # The new-job form, filled in from the template, on Carla's own dataset.
    carla_file = ready_file(db.session.scalar(select(User.id).where(User.email == "carla@example.com")))
    html = carla.get(f"/jobs/new?template={tpl.id}&file={carla_file}").get_data(as_text=True)
    assert 'id="from-template"' in html and f'name="template_id" value="{tpl.id}"' in html
    assert re.search(r'name="preset" value="aggressive"\s+checked', html)
    assert 'name="learning_rate" step="any" min="0" value="0.0005"' in html
    assert 'name="lora_r" step="1" min="0" value="32"' in html
    fields = {"training_file_id": carla_file, "preset": "aggressive", "pricing": "spot", "gpu_type": "H100_PCIE",
              "learning_rate": "0.0005", "lora_r": "16", "template_id": tpl.id, "action": "save"}
    r = carla.post("/jobs", fields)                                       # she changed lora_r
    assert r.status_code == 302, r.get_data(as_text=True)
    job = db.session.get(TrainingJob, r.headers["Location"].rsplit("/", 1)[1])
    assert (job.template_id, job.preset, job.configuration["overrides"]) == \
        (tpl.id, "aggressive", {"learning_rate": 0.0005, "lora_r": 16})
    assert "B&#39;s recipe" in carla.get(f"/jobs/{job.id}").get_data(as_text=True)
    assert "1 job" in carla.get("/templates").get_data(as_text=True)

    # Its creator deletes it; the job keeps its settings and says the template is gone.
    assert ana_console.post(f"/templates/{tpl.id}/delete").status_code == 302
    assert "(deleted since)" in carla.get(f"/jobs/{job.id}").get_data(as_text=True)
    assert 'id="no-templates"' in carla.get("/templates").get_data(as_text=True)
