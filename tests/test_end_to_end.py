"""The whole system on real parts: the API on Postgres, RQ on Redis, the local endpoint and
a real runpod worker process running the real handler on a tiny model."""
from __future__ import annotations

import io
import zipfile

import pytest

from control.extensions import db
from control.models import TrainingEvent
from tests.live_system import live_app, live_endpoint  # noqa: F401 - fixtures

pytestmark = pytest.mark.slow


def _work(app, max_jobs=None):
    from rq import SimpleWorker

    from control.services.queue import get_queue, redis_connection
    SimpleWorker([get_queue()], connection=redis_connection()).work(burst=True, max_jobs=max_jobs)


@pytest.mark.parametrize("app", ["postgres"], indirect=True)
def test_a_job_runs_from_upload_to_a_loadable_adapter(app, client, auth, upload, small_sample,
                                                      live_endpoint, tiny_model_dir, tmp_path):
    file_id = upload(small_sample, "sample.json").get_json()["id"]
    r = client.post("/api/training/jobs", headers=auth, json={
        "training_file_id": file_id, "preset": "balanced", "base_model": tiny_model_dir,
        "method": "lora", "gpu": {"type": "LOCAL_CPU", "pricing": "on_demand"},
        "hyperparameters": {"num_epochs": 1, "max_steps": 3, "batch_size": 2,
                            "gradient_accumulation_steps": 1, "max_seq_length": 512,
                            "checkpoint_every_steps": 2},
        "evaluation": {"max_new_tokens": 8}})
    job = r.get_json()
    assert r.status_code == 201 and job["status"] == "pending"
    seen = [job["status"]]

    r = client.post(f"/api/training/jobs/{job['id']}/start", headers=auth)
    seen.append(r.get_json()["status"])
    _work(app, max_jobs=1)                                   # dispatch
    detail = client.get(f"/api/training/jobs/{job['id']}", headers=auth).get_json()
    seen.append(detail["status"])
    assert detail["runpod_job_id"] and detail["attempt_history"][0]["runpod_job_id"] == detail["runpod_job_id"]
    _work(app)                                               # monitor until it ends

    events = client.get(f"/api/training/jobs/{job['id']}/events?limit=1000", headers=auth).get_json()["data"]
    seen += [e["event"]["stage"] for e in events if e["type"] == "stage"]
    detail = client.get(f"/api/training/jobs/{job['id']}", headers=auth).get_json()
    seen.append(detail["status"])
    assert seen == ["pending", "queued", "provisioning", "preprocessing", "model_loading",
                    "training", "evaluating", "finalizing", "completed"], (seen, detail)
    assert detail["progress_percentage"] == 100.0
    assert (detail["current_step"], detail["total_steps"]) == (3, 3)
    assert detail["latest_loss"] > 0 and detail["latest_perplexity"] > 0
    assert detail["started_at"] and detail["completed_at"] and detail["actual_duration_minutes"] >= 0

    seqs = [(e["attempt"], e["seq"]) for e in events]
    assert len(seqs) == len(set(seqs))
    assert db.session.query(TrainingEvent).filter_by(training_job_id=job["id"]).count() == len(events)
    types = [e["type"] for e in events]
    assert types.count("metrics") == 3 and types.count("completed") == 1 and "checkpoint" in types

    metrics = client.get(f"/api/training/jobs/{job['id']}/metrics", headers=auth).get_json()
    assert [p["step"] for p in metrics["data"]] == [1, 2, 3]
    csv_text = client.get(f"/api/training/jobs/{job['id']}/download/metrics", headers=auth).get_data(as_text=True)
    assert csv_text.splitlines()[0].startswith("step,epoch,training_loss") and len(csv_text.splitlines()) == 4

    arts = client.get(f"/api/training/jobs/{job['id']}/artifacts", headers=auth).get_json()
    assert arts["artifacts"]["adapter_path"].endswith("/adapter")
    assert arts["artifacts"]["base_perplexity"] > 0 and arts["artifacts"]["trained_perplexity"] > 0

    r = client.get(f"/api/training/jobs/{job['id']}/download/adapters", headers=auth)
    assert r.status_code == 302
    link = r.headers["Location"]
    r = client.get(link)                                     # signed: no bearer token needed
    assert r.status_code == 200
    out = tmp_path / "unzipped"
    zipfile.ZipFile(io.BytesIO(r.data)).extractall(out)
    assert (out / "README.md").exists()

    from peft import PeftModel
    from transformers import AutoModelForCausalLM
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model_dir), str(out / "adapter"))
    assert any("lora_A" in n for n, _ in model.named_parameters())
    arts = client.get(f"/api/training/jobs/{job['id']}/artifacts", headers=auth).get_json()
    assert arts["artifacts"]["download_count"] == 1
    assert client.get(link[:-3] + "xyz").status_code == 404   # a tampered link
