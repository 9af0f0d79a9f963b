"""The evaluation through the whole system: a job trained on the local endpoint (a real
runpod worker, the real handler, a tiny model) is evaluated on every suite, the customer's
prompts included; the API serves its measures and its answers page by page; the automatic
judge (a local OpenAI-compatible stand-in at the network edge) judges the answers; and
POST /evaluate runs the suite again as its own evaluation of the job."""
from __future__ import annotations

import io
import json

import pytest

from control.services.storage import get_storage
from shared.evaluation.report import Sample
from shared.storage.layout import JobLayout
from tests.live_system import live_app, live_endpoint  # noqa: F401 - fixtures
from tests.openai_stand_in import OpenAIStandIn, verdict
from tests.validation_tasks import validating_in_background

pytestmark = pytest.mark.slow
PROMPTS = (b'{"prompt": "Should I pay off my card or save first?", "reference": "Pay the card first.", "id": "card"}\n'
           b'{"prompt": "I got a raise!", "category": "celebrating", "id": "raise"}\n')


def _work(app):
    from rq import SimpleWorker

    from control.services.queue import get_queue, redis_connection
    SimpleWorker([get_queue()], connection=redis_connection()).work(burst=True)


def _adapter_prefers(app, job_id):
    """A judge that picks the adapter's answer whenever the two differ (read back from storage)."""
    def reply(request):
        with app.app_context():
            storage, layout = get_storage(), JobLayout.for_job(job_id).evaluation
            adapter = {Sample.model_validate_json(line).adapter.strip()
                       for suite in ("heldout", "ei", "custom") if storage.exists(layout.samples(suite))
                       for line in storage.get_bytes(layout.samples(suite)).decode().splitlines()}
        a, b = request.section("response_a"), request.section("response_b")
        if a == b:
            return verdict("tie")
        return verdict("A" if a in adapter else "B")
    return reply


@pytest.mark.parametrize("app", ["postgres"], indirect=True)
def test_a_trained_job_is_evaluated_judged_and_re_evaluated_through_the_api(app, client, auth, upload, small_sample,
                                                                            live_endpoint, tiny_model_dir):
    file_id = upload(small_sample, "sample.json").get_json()["id"]
    with validating_in_background(app):
        r = client.post("/api/training-files?wait=true", headers=auth, content_type="multipart/form-data",
                        data={"file": (io.BytesIO(PROMPTS), "prompts.jsonl"), "purpose": "evaluation"})
    assert r.status_code == 201, r.get_json()
    prompts_id = r.get_json()["id"]

    # a prompts file cannot be trained on, and a dataset is not a prompts file
    body = {"training_file_id": file_id, "preset": "balanced", "base_model": tiny_model_dir, "method": "lora",
            "gpu": {"type": "LOCAL_CPU", "pricing": "on_demand"},
            "hyperparameters": {"num_epochs": 1, "max_steps": 4, "batch_size": 2, "learning_rate": 0.02,
                                "gradient_accumulation_steps": 1, "max_seq_length": 512},
            "evaluation": {"size": "quick", "max_new_tokens": 8, "prompts_file_id": file_id}, "start": True}
    r = client.post("/api/training/jobs", headers=auth, json=body)
    assert r.status_code == 409 and "purpose" in r.get_json()["error"]["message"], r.get_json()
    body["evaluation"]["prompts_file_id"] = prompts_id
    job = client.post("/api/training/jobs", headers=auth, json=body).get_json()
    r = client.get(f"/api/training/jobs/{job['id']}/evaluation", headers=auth)
    assert r.status_code == 404                                  # nothing evaluated yet

    with OpenAIStandIn(_adapter_prefers(app, job["id"])) as judge:
        app.config.update(JUDGE_BASE_URL=judge.url, JUDGE_MODEL="judge-model", JUDGE_API_KEY="sk-judge-secret")
        _work(app)                                               # dispatch, monitor, judge
        judged = len(judge.requests)
    detail = client.get(f"/api/training/jobs/{job['id']}", headers=auth).get_json()
    assert detail["status"] == "completed", detail

    ev = client.get(f"/api/training/jobs/{job['id']}/evaluation", headers=auth).get_json()
    assert ev["status"] == "completed" and ev["run"]["id"] == "training" and ev["size"] == "quick"
    by_id = {m["id"]: m for m in ev["measures"]}
    assert by_id["perplexity"]["target"] == 30.0 and by_id["perplexity"]["status"] in ("met", "not_met")
    assert by_id["emotional_intelligence"]["status"] == "waiting_for_review"
    assert by_id["forgetting"]["n"] == 20 and by_id["forgetting"]["target"] == 95.0
    assert ev["suites"]["heldout"]["samples"] >= 1 and ev["suites"]["ei"]["samples"] == 10
    assert ev["suites"]["custom"]["samples"] == 2
    assert ev["data"]["held_out_conversations"] == 2                  # round(0.2 x 8)
    # the judge: both orders of every pair, a model, and it says so; its key never shows
    n_items = sum(v["samples"] for v in ev["suites"].values())
    assert judged == 2 * n_items
    judge_measure = by_id["judge"]
    assert judge_measure["scored_by"] == "model" and "a model, not people" in judge_measure["note"]
    assert ev["judge"]["judge_is_a_model"] is True and ev["judge"]["counts"]["invalid"] == 0
    assert ev["judge"]["counts"]["loss"] == 0                          # it never prefers the base
    assert "sk-judge-secret" not in json.dumps(ev)

    page = client.get(f"/api/training/jobs/{job['id']}/evaluation/samples?suite=ei&per_page=4&page=2",
                      headers=auth).get_json()
    assert page["total"] == 10 and len(page["samples"]) == 4 and page["page"] == 2
    first = page["samples"][0]
    assert first["prompt"][-1]["role"] == "user" and first["base"] and first["adapter"] and first["guidance"]
    assert first["judge"] in ("win", "tie")
    category = page["categories"][0]
    only = client.get(f"/api/training/jobs/{job['id']}/evaluation/samples?suite=ei&category={category}",
                      headers=auth).get_json()
    assert only["total"] == 2 and {s["category"] for s in only["samples"]} == {category}
    custom = client.get(f"/api/training/jobs/{job['id']}/evaluation/samples?suite=custom", headers=auth).get_json()
    assert {s["id"]: s["reference"] for s in custom["samples"]} == {"card": "Pay the card first.", "raise": None}
    assert "base_similarity" in custom["samples"][0]["scores"]
    r = client.get(f"/api/training/jobs/{job['id']}/evaluation/samples?suite=everything", headers=auth)
    assert r.status_code == 400

    # the whole suite again, as its own evaluation of the job
    r = client.post(f"/api/training/jobs/{job['id']}/evaluate", headers=auth,
                    json={"size": "full", "max_new_tokens": 2})
    assert r.status_code == 202, r.get_json()
    run = r.get_json()
    assert run["status"] == "queued" and run["kind"] == "re-evaluation"
    r = client.post(f"/api/training/jobs/{job['id']}/evaluate", headers=auth, json={})
    assert r.status_code == 409                                   # one at a time
    app.config.update(JUDGE_BASE_URL=None)
    _work(app)
    again = client.get(f"/api/training/jobs/{job['id']}/evaluation?run={run['id']}", headers=auth).get_json()
    assert again["status"] == "completed" and again["size"] == "full", again
    assert again["suites"]["ei"]["samples"] == 50 and again["data"]["forgetting_questions"] == 100
    assert [r["id"] for r in again["runs"]] == ["training", run["id"]]
    latest = client.get(f"/api/training/jobs/{job['id']}/evaluation", headers=auth).get_json()
    assert latest["run"]["id"] == run["id"]                       # the newest finished one by default
    assert {m["id"]: m["base"] for m in again["measures"]}["perplexity"] == by_id["perplexity"]["base"]
    r = client.get(f"/api/training/jobs/{job['id']}/evaluation?run=ev_nope", headers=auth)
    assert r.status_code == 404

    # what goes to the client: the report was built as each evaluation landed (and after the
    # judge), and the deployment package holds the real adapter, the script and the newest answers
    versions = client.get(f"/api/training/jobs/{job['id']}/download/validation-report", headers=auth)
    assert versions.status_code == 200 and versions.data.startswith(b"%PDF")
    assert "-v1.pdf" not in versions.headers["Content-Disposition"]          # rebuilt since the first
    link = client.get(f"/api/training/jobs/{job['id']}/download/deployment-package?redirect=false",
                      headers=auth).get_json()
    package = client.get(link["url"].split("localhost", 1)[1])
    assert package.status_code == 200
    import zipfile
    names = zipfile.ZipFile(io.BytesIO(package.data)).namelist()
    assert {"inference.py", "requirements.txt", "README.md", "example_prompts.json",
            "adapter/adapter_config.json"} <= set(names)
    examples = json.loads(zipfile.ZipFile(io.BytesIO(package.data)).read("example_prompts.json"))
    assert {e["suite"] for e in examples} >= {"heldout", "ei"} and all(e["adapter_answer"] is not None for e in examples)
