"""What one user may make the service do, tried as an attacker would: train on a path of the
worker's disk or any hub repository, learn what the worker's disk holds from its errors,
fill the queue, create jobs without end, or flood the API. On Postgres and SQLite."""
from __future__ import annotations

import hashlib
import json
import uuid

import pytest

from control.extensions import db
from control.models import EvaluationRun, JobStatus, RegisteredBaseModel, TrainingJob, utcnow
from control.services.queue import get_queue

ALLOWED = ("embedded", "meta-llama/Meta-Llama-3-70B-Instruct")
ATTACKS = ["/root/.ssh", "../x", "file:///etc", "~/.aws", "/etc/passwd.gguf", "C:\\Windows",
           "https://evil.example.com/model", "someone/any-repo"]


def _body(file_id, **over):
    body = {"training_file_id": file_id, "preset": "balanced", "hyperparameters": {"max_steps": 3},
            "gpu": {"type": "H100_PCIE", "pricing": "spot"}}
    body.update(over)
    return body


@pytest.fixture
def admin(make_user):
    return make_user("root@example.com", "admin")[1]


def _nothing_stored_or_queued():
    assert db.session.query(TrainingJob).count() == 0
    assert get_queue().count == 0


def _refused_naming_the_allowed_values(r):
    err = r.get_json()["error"]
    assert r.status_code == 400, r.get_json()
    assert err["field"] == "base_model"
    for name in ALLOWED:
        assert name in err["message"]
    return err["message"]


# ------------------------------------------------------------------ base models

@pytest.mark.parametrize("name", ATTACKS)
def test_a_path_url_or_unlisted_hub_id_is_refused_before_anything_is_stored_or_queued(
        client, auth, file_id, name):
    r = client.post("/api/training/jobs", headers=auth, json=_body(file_id, base_model=name, start=True))
    message = _refused_naming_the_allowed_values(r)
    assert "pipeline base-models add" in message
    _nothing_stored_or_queued()


@pytest.mark.parametrize("name", ["/root/.ssh", "someone/any-repo"])
def test_the_cost_estimate_refuses_the_same_base_models(client, auth, file_id, name):
    r = client.get("/api/training/cost-estimate", headers=auth,
                   query_string={"training_file_id": file_id, "base_model": name})
    _refused_naming_the_allowed_values(r)


def test_everyone_sees_the_allowed_base_models_and_the_default(client, auth):
    body = client.get("/api/base-models", headers=auth).get_json()
    assert [m["name"] for m in body["data"]] == list(ALLOWED)
    assert {m["source"] for m in body["data"]} == {"configured"}
    assert body["default"] == "embedded"


def test_an_admin_registers_a_hub_model_jobs_may_then_use_and_withdraw(client, auth, admin, file_id):
    name = "Qwen/Qwen2.5-7B-Instruct"
    refused = client.post("/api/training/jobs", headers=auth, json=_body(file_id, base_model=name))
    assert refused.status_code == 400

    r = client.post("/api/base-models", headers=admin, json={"name": name, "description": "7B, Apache 2.0"})
    assert r.status_code == 201, r.get_json()
    assert r.get_json()["name"] == name and r.get_json()["source"] == "registered"
    listed = client.get("/api/base-models", headers=auth).get_json()["data"]
    assert {"name": name, "source": "registered", "description": "7B, Apache 2.0"}.items() <= listed[-1].items()

    job = client.post("/api/training/jobs", headers=auth, json=_body(file_id, base_model=name))
    assert job.status_code == 201 and job.get_json()["base_model"] == name
    again = client.post("/api/base-models", headers=admin, json={"name": name})
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "already_registered"

    assert client.delete(f"/api/base-models/{name}", headers=admin).status_code == 204
    gone = client.post("/api/training/jobs", headers=auth, json=_body(file_id, base_model=name))
    assert gone.status_code == 400 and name not in gone.get_json()["error"]["message"].split("choose one of")[1]
    assert db.session.get(TrainingJob, job.get_json()["id"]).base_model == name     # kept by its job


def test_a_retry_of_a_job_whose_model_was_withdrawn_is_refused(client, auth, admin, file_id):
    name = "Qwen/Qwen2.5-7B-Instruct"
    client.post("/api/base-models", headers=admin, json={"name": name})
    job_id = client.post("/api/training/jobs", headers=auth, json=_body(file_id, base_model=name)).get_json()["id"]
    job = db.session.get(TrainingJob, job_id)
    job.status = "failed"
    db.session.commit()
    client.delete(f"/api/base-models/{name}", headers=admin)
    r = client.post(f"/api/training/jobs/{job_id}/retry", headers=auth, json={"start": True})
    _refused_naming_the_allowed_values(r)
    assert db.session.query(TrainingJob).count() == 1 and get_queue().count == 0


def test_a_non_admin_can_neither_register_nor_withdraw_a_base_model(client, auth, admin):
    r = client.post("/api/base-models", headers=auth, json={"name": "someone/any-repo"})
    assert r.status_code == 403
    assert "only admins" in r.get_json()["error"]["message"]
    client.post("/api/base-models", headers=admin, json={"name": "Qwen/Qwen2.5-7B-Instruct"})
    assert client.delete("/api/base-models/Qwen/Qwen2.5-7B-Instruct", headers=auth).status_code == 403
    assert [m.name for m in db.session.query(RegisteredBaseModel)] == ["Qwen/Qwen2.5-7B-Instruct"]


@pytest.mark.parametrize("name", ["/root/.ssh", "../x", "file:///etc", "org/../x", "https://h.co/a/b",
                                  "org/model.gguf", "embedded", "no-slash", "a/b/c", "org/na me"])
def test_even_an_admin_registers_only_a_hub_id(client, admin, name):
    r = client.post("/api/base-models", headers=admin, json={"name": name})
    assert r.status_code in (400, 409), r.get_json()
    assert r.get_json()["error"]["field"] == "name" or r.status_code == 409
    assert db.session.query(RegisteredBaseModel).count() == 0


def test_withdrawing_a_configured_or_unknown_model_says_why(client, admin):
    r = client.delete("/api/base-models/meta-llama/Meta-Llama-3-70B-Instruct", headers=admin)
    assert r.status_code == 409 and "BASE_MODELS" in r.get_json()["error"]["message"]
    assert client.delete("/api/base-models/nobody/nothing", headers=admin).status_code == 404


# ------------------------------------------------------------------ what the worker says

def _handler_error(base_model, small_sample, tmp_path, monkeypatch) -> dict:
    from handler.handler import handler
    from shared.job_input import Hyperparameters
    from shared.storage import LocalStorage
    root = tmp_path / "store"
    monkeypatch.setenv("STORAGE_LOCAL_ROOT", str(root))
    sha = hashlib.sha256(small_sample).hexdigest()
    LocalStorage(root).put_bytes(f"datasets/{sha}.json", small_sample)
    raw = {"job_id": "job1", "dataset": {"key": f"datasets/{sha}.json", "sha256": sha},
           "base_model": base_model, "method": "lora",
           "hyperparameters": Hyperparameters.for_preset("balanced", {"max_steps": 1}).model_dump(mode="json"),
           "checkpoint": {"every_steps": 100, "prefix": "jobs/job1"}}
    return list(handler({"id": "rp-1", "input": raw}))[-1]["error"]


def test_a_worker_error_about_a_model_never_tells_what_a_path_holds_or_whether_it_exists(
        small_sample, tmp_path, monkeypatch):
    secret = tmp_path / "victim"
    (secret / ".ssh").mkdir(parents=True)
    (secret / ".ssh" / "id_rsa").write_text("PRIVATE KEY")
    (secret / "weights.gguf").write_text("not a model")
    answers = {}
    for name in (secret / ".ssh", secret / "missing", secret / "weights.gguf", secret / "nothing.gguf",
                 secret / ".ssh" / "id_rsa"):
        error = _handler_error(str(name), small_sample, tmp_path, monkeypatch)
        text = json.dumps(error).replace(str(name), "NAME")
        for leak in ("id_rsa", "PRIVATE KEY", "config.json", "exists", "not found", "No such file"):
            assert leak not in text, (leak, error)
        assert error["type"] == "base_model_access" and error["user_error"] is True
        answers[name] = text
    assert len(set(answers.values())) == 1                     # one answer, whatever is there
    assert '"message": "base model \'NAME\' is not available to the worker"' in answers[secret / ".ssh"]


def test_the_loaders_own_words_about_a_path_are_not_passed_on():
    from handler.base_models import _hub_errors
    from shared.failures import classify, classify_text
    with pytest.raises(Exception) as info:
        with _hub_errors("/root/.ssh"):
            raise OSError("/root/.ssh does not appear to have a file named config.json. Checkout "
                          "'https://huggingface.co//root/.ssh/tree/None' for available files.")
    failure = classify(info.value)
    assert failure.message == "base model '/root/.ssh' is not available to the worker"
    assert "config.json" not in json.dumps(failure.to_dict())
    text = classify_text("ValueError: Unrecognized model in /srv/models/secret-project. Should have a "
                         "`model_type` key in its config.json").to_dict()
    assert text["type"] == "base_model_access" and "secret-project" not in json.dumps(text)
    internal = classify_text("FileNotFoundError: [Errno 2] No such file or directory: '/root/.ssh/id_rsa'")
    assert "/root" not in internal.message and "id_rsa" not in internal.message


# ------------------------------------------------------------------ quotas

def test_the_active_jobs_quota_answers_429_with_retry_after_and_frees_when_a_job_ends(
        app, client, auth, make_user, upload, small_sample, file_id):
    app.config["MAX_ACTIVE_JOBS_PER_USER"] = 2
    started = [client.post("/api/training/jobs", headers=auth, json=_body(file_id, start=True)) for _ in range(2)]
    assert [r.status_code for r in started] == [201, 201]

    r = client.post("/api/training/jobs", headers=auth, json=_body(file_id, start=True))
    assert r.status_code == 429 and r.headers["Retry-After"] == "60"
    err = r.get_json()["error"]
    assert err["code"] == "quota_exceeded"
    assert "MAX_ACTIVE_JOBS_PER_USER" in err["message"] and "is 2" in err["message"]
    assert db.session.query(TrainingJob).count() == 2 and get_queue().count == 2     # nothing stored or queued

    pending = client.post("/api/training/jobs", headers=auth, json=_body(file_id)).get_json()["id"]
    r = client.post(f"/api/training/jobs/{pending}/start", headers=auth)
    assert r.status_code == 429 and "Retry-After" in r.headers
    assert db.session.get(TrainingJob, pending).status == "pending"

    other = make_user("bo@example.com")[1]                       # a quota is per user
    other_file = upload(small_sample, headers=other).get_json()["id"]
    assert client.post("/api/training/jobs", headers=other, json=_body(other_file, start=True)).status_code == 201

    assert client.post(f"/api/training/jobs/{started[0].get_json()['id']}/cancel", headers=auth).status_code == 202
    r = client.post(f"/api/training/jobs/{pending}/start", headers=auth)
    assert r.status_code == 202 and r.get_json()["status"] == "queued"


def test_the_hourly_quota_answers_429_and_deleting_jobs_does_not_give_the_hour_back(app, client, auth, file_id):
    app.config["MAX_JOBS_PER_HOUR"] = 3
    ids = [client.post("/api/training/jobs", headers=auth, json=_body(file_id)).get_json()["id"] for _ in range(3)]
    for job_id in ids:
        assert client.delete(f"/api/training/jobs/{job_id}", headers=auth).status_code == 204
    r = client.post("/api/training/jobs", headers=auth, json=_body(file_id))
    assert r.status_code == 429
    assert 3500 <= int(r.headers["Retry-After"]) <= 3600
    assert "MAX_JOBS_PER_HOUR" in r.get_json()["error"]["message"] and "is 3" in r.get_json()["error"]["message"]
    assert db.session.query(TrainingJob).count() == 0


def test_admins_have_the_same_quotas(app, client, admin, upload, small_sample):
    app.config["MAX_ACTIVE_JOBS_PER_USER"] = 1
    file_id = upload(small_sample, headers=admin).get_json()["id"]
    assert client.post("/api/training/jobs", headers=admin, json=_body(file_id, start=True)).status_code == 201
    assert client.post("/api/training/jobs", headers=admin, json=_body(file_id, start=True)).status_code == 429


# ------------------------------------------------------------------ the request rate

def test_the_request_rate_per_token_answers_429_with_retry_after(app, client, auth, make_user):
    app.config["API_RATE_LIMIT"] = "3 per minute"
    assert [client.get("/api/base-models", headers=auth).status_code for _ in range(3)] == [200] * 3
    r = client.get("/api/training/jobs", headers=auth)              # one budget for every route
    assert r.status_code == 429
    assert 1 <= int(r.headers["Retry-After"]) <= 60
    err = r.get_json()["error"]
    assert err["code"] == "rate_limited" and "API_RATE_LIMIT" in err["message"] and "3 per 1 minute" in err["message"]

    other = make_user("bo@example.com")[1]                          # another token has its own budget
    assert client.get("/api/base-models", headers=other).status_code == 200
    assert client.get("/login").status_code == 200                   # the console is not counted


def test_requests_without_a_token_are_counted_by_address(app, client):
    app.config["API_RATE_LIMIT"] = "2 per minute"
    address = f"2001:db8::{uuid.uuid4().hex[:4]}"                  # this test's own, in a shared Redis
    codes = [client.get("/api/training/jobs", headers={"Authorization": ""},
                        environ_base={"REMOTE_ADDR": address}).status_code for _ in range(3)]
    assert codes == [401, 401, 429]


# ------------------------------------------------------------------ the console

@pytest.fixture
def console(app, make_person):
    from tests.test_console import Console
    make_person()
    return Console(app).login("ana@example.com")


@pytest.fixture
def console_file(console, small_sample):
    from tests.test_console import _upload
    r = _upload(console, small_sample)
    assert r.status_code == 302, r.get_data(as_text=True)
    return r.headers["Location"].rsplit("/", 1)[1]


def _form(file_id, **over):
    return {"training_file_id": file_id, "preset": "balanced", "pricing": "spot", "gpu_type": "H100_PCIE",
            "max_steps": "3", **over}


def test_the_console_offers_the_allowed_base_models_and_refuses_a_path(console, console_file):
    html = console.get(f"/jobs/new?file={console_file}").get_data(as_text=True)
    for name in ALLOWED:
        assert f'<option value="{name}">' in html
    r = console.post("/jobs", {**_form(console_file, base_model="/root/.ssh"), "action": "start"})
    page = r.get_data(as_text=True)
    assert r.status_code == 400 and "is not allowed" in page and "meta-llama/Meta-Llama-3-70B-Instruct" in page
    assert db.session.query(TrainingJob).count() == 0 and get_queue().count == 0


def test_the_console_shows_the_quota_on_the_form_and_the_job_page(app, console, console_file):
    app.config["MAX_ACTIVE_JOBS_PER_USER"] = 1
    console.get("/jobs/new")
    assert console.post("/jobs", {**_form(console_file), "action": "start"}).status_code == 302
    console.get("/jobs/new")
    r = console.post("/jobs", {**_form(console_file, name="second"), "action": "start"})
    page = r.get_data(as_text=True)
    assert r.status_code == 429 and "MAX_ACTIVE_JOBS_PER_USER" in page and r.headers["Retry-After"] == "60"
    assert 'value="second"' in page                                  # the form keeps what was typed

    console.get("/jobs/new")
    saved = console.post("/jobs", {**_form(console_file, name="later"), "action": "save"})
    job_id = saved.headers["Location"].rsplit("/", 1)[1]
    console.get(f"/jobs/{job_id}")
    r = console.post(f"/jobs/{job_id}/start")
    assert r.status_code == 302 and r.headers["Location"].endswith(f"/jobs/{job_id}")
    assert "MAX_ACTIVE_JOBS_PER_USER" in console.get(f"/jobs/{job_id}").get_data(as_text=True)
    assert db.session.get(TrainingJob, job_id).status == "pending"


def test_made_up_tokens_share_their_senders_budget_instead_of_each_getting_one(app, client):
    app.config["API_RATE_LIMIT"] = "3 per minute"
    address = f"2001:db8::{uuid.uuid4().hex[:4]}"                  # this test's own, in a shared Redis
    codes = [client.get("/api/training/jobs", headers={"Authorization": f"Bearer brt_{uuid.uuid4().hex}"},
                        environ_base={"REMOTE_ADDR": address}).status_code for _ in range(5)]
    assert codes == [401, 401, 401, 429, 429]


def _completed(client, auth, file_id) -> str:
    job_id = client.post("/api/training/jobs", headers=auth, json=_body(file_id)).get_json()["id"]
    job = db.session.get(TrainingJob, job_id)
    job.status, job.completed_at = JobStatus.COMPLETED, utcnow()
    db.session.commit()
    return job_id


def test_a_re_evaluation_holds_a_gpu_and_counts_in_the_active_and_hourly_quotas(app, client, auth, file_id):
    app.config["MAX_JOBS_PER_HOUR"] = 5
    done = [_completed(client, auth, file_id) for _ in range(3)]
    app.config["MAX_ACTIVE_JOBS_PER_USER"] = 1
    assert client.post(f"/api/training/jobs/{done[0]}/evaluate", headers=auth, json={}).status_code == 202
    r = client.post(f"/api/training/jobs/{done[1]}/evaluate", headers=auth, json={})   # another job's
    assert r.status_code == 429 and "MAX_ACTIVE_JOBS_PER_USER" in r.get_json()["error"]["message"]
    r = client.post("/api/training/jobs", headers=auth, json=_body(file_id, start=True))
    assert r.status_code == 429                                  # the re-evaluation holds the place
    assert db.session.query(EvaluationRun).count() == 1

    app.config["MAX_ACTIVE_JOBS_PER_USER"] = 0
                                                                 # 3 jobs and 1 re-evaluation this hour
    assert client.post(f"/api/training/jobs/{done[1]}/evaluate", headers=auth, json={}).status_code == 202
    r = client.post(f"/api/training/jobs/{done[2]}/evaluate", headers=auth, json={})
    assert r.status_code == 429 and "MAX_JOBS_PER_HOUR" in r.get_json()["error"]["message"]
    assert db.session.query(EvaluationRun).count() == 2
