"""The JSON API: auth, validation, ownership, and the job resource; on Postgres and SQLite."""
from __future__ import annotations

import json

import pytest

from control.extensions import db
from control.models import TrainingFile, TrainingJob


def _job_body(file_id, **over):
    body = {"training_file_id": file_id, "preset": "balanced", "name": "first run",
            "hyperparameters": {"num_epochs": 1, "max_steps": 3},
            "gpu": {"type": "H100_PCIE", "pricing": "spot"}, "tags": ["anxious"]}
    body.update(over)
    return body


def test_it_uploads_a_dataset_with_its_statistics_and_sha256(upload, small_sample, app):
    r = upload(small_sample, "sample.json")
    body = r.get_json()
    assert r.status_code == 201
    assert body["format"] == "brightrun-lora-v4"
    stats = body["statistics"]
    assert (stats["conversations"], stats["pairs"], stats["trainable_pairs"]) == (8, 25, 23)
    import hashlib
    assert body["sha256"] == hashlib.sha256(small_sample).hexdigest()
    row = db.session.get(TrainingFile, body["id"])
    from control.services.storage import get_storage
    assert get_storage().get_bytes(row.storage_key) == small_sample


def test_it_rejects_a_broken_dataset_naming_the_place_and_stores_nothing(upload, sample_doc, app):
    del sample_doc["conversations"][1]["training_pairs"][0]["target_response"]
    r = upload(json.dumps(sample_doc).encode())
    err = r.get_json()["error"]
    assert r.status_code == 422
    assert err["code"] == "dataset_format"
    assert "conversation 2" in err["message"] and "target_response" in err["message"]
    assert db.session.query(TrainingFile).count() == 0
    from control.services.storage import get_storage
    assert get_storage().list("training-files") == []


@pytest.mark.parametrize("data,filename,needle", [
    (b"{not json", "x.json", "line 1"),
    (b"", "x.json", "empty"),
])
def test_it_rejects_unreadable_files(upload, data, filename, needle):
    r = upload(data, filename)
    assert r.status_code == 422
    assert needle in r.get_json()["error"]["message"].lower()


def test_an_upload_without_the_file_field_is_a_400(client, auth):
    r = client.post("/api/training-files", headers=auth, data={"other": "x"},
                    content_type="multipart/form-data")
    assert r.status_code == 400 and r.get_json()["error"]["field"] == "file"


def test_a_huge_upload_body_is_a_413(client, auth, app):
    app.config["MAX_CONTENT_LENGTH"] = 1024
    r = client.post("/api/training-files", headers=auth, data=b"x" * 4096,
                    content_type="multipart/form-data; boundary=zz")
    assert r.status_code == 413
    assert r.get_json()["error"]["code"] == "payload_too_large"


def test_a_huge_json_body_is_a_413(client, auth):
    r = client.post("/api/training/jobs", headers=auth, data="[" + "1," * 600_000 + "1]",
                    content_type="application/json")
    assert r.status_code == 413


@pytest.mark.parametrize("headers,needle", [
    ({}, "missing Authorization"),
    ({"Authorization": "Bearer brt_wrong"}, "invalid or revoked"),
    ({"Authorization": "Basic abc"}, "Bearer <token>"),
])
def test_every_route_needs_a_valid_token(client, headers, needle):
    for method, path in [("get", "/api/training/jobs"), ("post", "/api/training/jobs"),
                         ("get", "/api/training-files"), ("get", "/api/training/jobs/tj_x/metrics"),
                         ("get", "/api/training/cost-estimate")]:
        r = getattr(client, method)(path, headers=headers)
        assert r.status_code == 401, (method, path)
        assert needle in r.get_json()["error"]["message"]


def test_it_creates_a_pending_job_with_the_documented_fields_and_an_estimate(client, auth, file_id):
    r = client.post("/api/training/jobs", headers=auth, json=_job_body(file_id))
    job = r.get_json()
    assert r.status_code == 201, job
    for field in ("id", "training_file_id", "name", "description", "configuration", "preset",
                  "status", "current_stage", "progress_percentage", "started_at", "completed_at",
                  "cost_estimate", "actual_cost", "estimated_duration_minutes",
                  "actual_duration_minutes", "runpod_job_id", "gpu_type", "gpu_pricing_tier",
                  "current_epoch", "current_step", "total_steps", "latest_loss",
                  "latest_learning_rate", "latest_perplexity", "estimated_time_remaining_minutes",
                  "error_message", "error_type", "retry_count", "checkpoint_recovery_count",
                  "created_by", "created_at", "updated_at"):
        assert field in job, field
    assert job["status"] == "pending"
    hp = job["configuration"]["hyperparameters"]
    assert hp["num_epochs"] == 1 and hp["max_steps"] == 3 and hp["lora_r"] == 16
    assert job["gpu_type"] == "H100_PCIE" and job["gpu_pricing_tier"] == "spot"
    assert job["cost_estimate"] > 0 and job["estimated_duration_minutes"] > 0
    assert job["estimate"]["price_per_hour"] == 2.49


@pytest.mark.parametrize("body_patch,status,field", [
    ({"preset": "turbo"}, 400, "preset"),
    ({"hyperparameters": {"num_epochs": -1}}, 400, "hyperparameters.num_epochs"),
    ({"hyperparameters": {"num_epochs": "3"}}, 400, "hyperparameters.num_epochs"),
    ({"hyperparameters": {"epochs": 3}}, 400, "hyperparameters.epochs"),
    ({"hyperparameters": {"learning_rate": 0}}, 400, "hyperparameters.learning_rate"),
    ({"gpu": {"type": "H100_PCIE", "pricing": "cheap"}}, 400, "gpu.pricing"),
    ({"gpu": {"type": "TPU"}}, 400, "gpu.type"),
    ({"training_file_id": 7}, 400, "training_file_id"),
    ({"method": "full"}, 400, "method"),
    ({"tags": "x"}, 400, "tags"),
    ({"surprise": 1}, 400, "surprise"),
])
def test_bad_job_settings_are_a_400_naming_the_field(client, auth, file_id, body_patch, status, field):
    r = client.post("/api/training/jobs", headers=auth, json=_job_body(file_id, **body_patch))
    assert r.status_code == status, r.get_json()
    err = r.get_json()["error"]
    assert err["field"] == field, err
    assert "Traceback" not in r.get_data(as_text=True)
    assert db.session.query(TrainingJob).count() == 0


def test_a_missing_field_is_named(client, auth):
    r = client.post("/api/training/jobs", headers=auth, json={"preset": "balanced"})
    assert r.status_code == 400
    assert r.get_json()["error"]["field"] == "training_file_id"


@pytest.mark.parametrize("data,ctype,code", [
    ("{\"training_file_id\": ", "application/json", "malformed_json"),
    ("[1, 2]", "application/json", "invalid_request"),
    ("training_file_id=x", "application/x-www-form-urlencoded", "unsupported_media_type"),
])
def test_malformed_or_non_object_json_is_a_clear_4xx(client, auth, data, ctype, code):
    r = client.post("/api/training/jobs", headers=auth, data=data, content_type=ctype)
    assert 400 <= r.status_code < 500
    assert r.get_json()["error"]["code"] == code


def test_a_job_on_an_unknown_training_file_is_a_404(client, auth):
    r = client.post("/api/training/jobs", headers=auth, json=_job_body("file_nope"))
    assert r.status_code == 404 and "file_nope" in r.get_json()["error"]["message"]


def test_another_users_job_and_file_are_not_found(client, auth, make_user, file_id):
    job = client.post("/api/training/jobs", headers=auth, json=_job_body(file_id)).get_json()
    _, other = make_user("bo@example.com")
    for method, path in [("get", f"/api/training/jobs/{job['id']}"),
                         ("get", f"/api/training/jobs/{job['id']}/metrics"),
                         ("get", f"/api/training/jobs/{job['id']}/events"),
                         ("post", f"/api/training/jobs/{job['id']}/start"),
                         ("post", f"/api/training/jobs/{job['id']}/cancel"),
                         ("delete", f"/api/training/jobs/{job['id']}"),
                         ("get", f"/api/training-files/{file_id}")]:
        r = getattr(client, method)(path, headers=other)
        assert r.status_code == 404, (method, path)
    assert client.get("/api/training/jobs", headers=other).get_json()["total"] == 0
    r = client.post("/api/training/jobs", headers=other, json=_job_body(file_id))
    assert r.status_code == 404
    assert client.get(f"/api/training/jobs/{job['id']}", headers=auth).status_code == 200


def test_lists_are_paginated_and_filtered(client, auth, file_id):
    ids = [client.post("/api/training/jobs", headers=auth,
                       json=_job_body(file_id, name=f"run {i}", tags=["t%d" % (i % 2)])).get_json()["id"]
           for i in range(5)]
    page = client.get("/api/training/jobs?per_page=2&page=2", headers=auth).get_json()
    assert page["total"] == 5 and len(page["data"]) == 2
    assert [j["id"] for j in page["data"]] == ids[::-1][2:4]
    assert client.get("/api/training/jobs?tag=t1", headers=auth).get_json()["total"] == 2
    assert client.get("/api/training/jobs?status=completed", headers=auth).get_json()["total"] == 0
    assert client.get("/api/training/jobs?status=pending&q=run%203", headers=auth).get_json()["total"] == 1
    assert client.get("/api/training/jobs?created_after=2000-01-01", headers=auth).get_json()["total"] == 5
    r = client.get("/api/training/jobs?per_page=0", headers=auth)
    assert r.status_code == 400 and r.get_json()["error"]["field"] == "per_page"
    r = client.get("/api/training/jobs?created_after=yesterday", headers=auth)
    assert r.status_code == 400 and r.get_json()["error"]["field"] == "created_after"


def test_cancel_and_delete_of_a_pending_job(client, auth, file_id):
    job = client.post("/api/training/jobs", headers=auth, json=_job_body(file_id)).get_json()
    r = client.post(f"/api/training/jobs/{job['id']}/cancel", headers=auth)
    assert r.status_code == 202 and r.get_json()["status"] == "cancelled"
    r = client.post(f"/api/training/jobs/{job['id']}/start", headers=auth)
    assert r.status_code == 409 and "cancelled" in r.get_json()["error"]["message"]
    assert r.get_json()["error"]["code"] == "invalid_state"
    r = client.get(f"/api/training/jobs/{job['id']}/download/adapters", headers=auth)
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "not_ready"   # nothing trained
    assert client.delete(f"/api/training/jobs/{job['id']}", headers=auth).status_code == 204
    assert client.get(f"/api/training/jobs/{job['id']}", headers=auth).status_code == 404


def test_cost_estimate_follows_the_choices(client, auth, file_id):
    base = f"/api/training/cost-estimate?training_file_id={file_id}&gpu_type=H100_PCIE&base_model=meta-llama/Meta-Llama-3-70B-Instruct&method=qlora"
    spot = client.get(base, headers=auth).get_json()
    on_demand = client.get(base + "&pricing=on_demand", headers=auth).get_json()
    more = client.get(base + "&num_epochs=6", headers=auth).get_json()
    assert spot["price_per_hour"] == 2.49 and on_demand["price_per_hour"] == 7.99
    assert on_demand["cost_usd"] > spot["cost_usd"]
    assert more["training_tokens"] == 2 * spot["training_tokens"]
    assert spot["cost_low_usd"] < spot["cost_usd"] < spot["cost_high_usd"]
    r = client.get(base + "&pricing=free", headers=auth)
    assert r.status_code == 400 and r.get_json()["error"]["field"] == "pricing"


def test_openapi_describes_every_api_route(client, app):
    doc = client.get("/api/openapi.json").get_json()
    documented = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
    served = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api"):
            path = rule.rule.replace("<", "{").replace(">", "}")
            served |= {(m, path) for m in rule.methods - {"HEAD", "OPTIONS"}}
    # ``/download/{kind}`` is described once per kind (each takes its own query parameters).
    kinds = ("adapters", "metrics", "validation-report", "deployment-package")
    served = {(m, p.replace("{kind}", k)) for m, p in served for k in (kinds if "{kind}" in p else ("",))}
    assert documented == served
