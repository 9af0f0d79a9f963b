"""One test per error class: provoked for real where this machine allows (a broken dataset,
the time limit, a storage outage, a base model that cannot be reached, no capacity, a
cancel), and otherwise the classifier fed the exception types and messages those failures
really raise (GPU out of memory, a gated model, a GPU fault). Each checks the type, the
user-or-platform flag, the message, the cause and the fix."""
from __future__ import annotations

import hashlib
import json

import pytest

from shared.failures import RECOVERABLE, classify, classify_text


def _job_input(base_model, data, storage, *, prefix="jobs/job1", **overrides):
    from shared.job_input import Hyperparameters, JobInput
    sha = hashlib.sha256(data).hexdigest()
    storage.put_bytes(f"datasets/{sha}.json", data)
    raw = {"job_id": "job1", "dataset": {"key": f"datasets/{sha}.json", "sha256": sha},
           "base_model": base_model, "method": "lora",
           "hyperparameters": Hyperparameters.for_preset("balanced", overrides).model_dump(mode="json"),
           "checkpoint": {"every_steps": 100, "prefix": prefix}, "evaluation": {"size": "perplexity"}}
    return JobInput.parse(raw), raw


def _run_handler(raw: dict) -> list[dict]:
    from handler.handler import handler
    return list(handler({"id": "rp-1", "input": raw}))


def _assert_explained(error: dict, type_: str, user_error: bool, *needles: str) -> None:
    assert error["type"] == type_, error
    assert error["user_error"] is user_error, error
    assert error["message"] and error["cause"] and error["fix"], error
    text = json.dumps(error)
    for needle in needles:
        assert needle in text, (needle, error)
    assert "Traceback" not in text


# ------------------------------------------------------------------ provoked for real

def test_a_broken_dataset_is_the_users_to_fix_and_names_the_place(tiny_model_dir, small_sample, tmp_path,
                                                                    monkeypatch):
    from shared.storage import LocalStorage
    monkeypatch.setenv("STORAGE_LOCAL_ROOT", str(tmp_path))
    doc = json.loads(small_sample)
    doc["conversations"][0]["training_pairs"][0]["target_response"] = 42
    data = json.dumps(doc).encode()
    _, raw = _job_input(tiny_model_dir, data, LocalStorage(tmp_path), max_steps=2)
    error = _run_handler(raw)[-1]["error"]
    _assert_explained(error, "dataset_format", True, "conversation 1", "target_response",
                      "does not follow its format")
    assert error["type"] not in RECOVERABLE


def test_the_time_limit_stops_training_with_a_checkpoint_first(tiny_model_dir, small_sample, tmp_path,
                                                               monkeypatch):
    import handler.control_signals as control_signals
    from shared.storage import LocalStorage
    monkeypatch.setenv("STORAGE_LOCAL_ROOT", str(tmp_path))
    monkeypatch.setattr(control_signals, "TIME_LIMIT_MARGIN_S", 0.0)
    _, raw = _job_input(tiny_model_dir, small_sample, LocalStorage(tmp_path), num_epochs=50, max_steps=5000,
                        batch_size=2, gradient_accumulation_steps=1, max_seq_length=512)
    raw["time_limit_seconds"] = 10          # room to load the tiny model and train a step on a busy machine
    events = _run_handler(raw)
    last_checkpoint = [e for e in events if e["type"] == "checkpoint"][-1]
    assert last_checkpoint["reason"] == "time_limit"
    error = events[-1]["error"]
    _assert_explained(error, "timeout", False, "time limit", f"step {last_checkpoint['step']}",
                      "Continue training from the checkpoint")
    assert 0 < last_checkpoint["step"] < 5000


def test_a_storage_outage_is_the_platforms_and_recoverable(tiny_model_dir, small_sample, tmp_path, monkeypatch):
    import dataclasses

    import handler.handler as handler_module
    from shared.storage import LocalStorage
    root = tmp_path / "store"
    _, raw = _job_input(tiny_model_dir, small_sample, LocalStorage(root), max_steps=2)
    monkeypatch.setenv("STORAGE_LOCAL_ROOT", str(root))
    monkeypatch.setattr(handler_module, "SETTINGS",
                        dataclasses.replace(handler_module.SETTINGS, storage_retry_seconds=0.5))
    root.rename(tmp_path / "away")
    root.write_text("the volume is gone")
    error = _run_handler(raw)[-1]["error"]
    _assert_explained(error, "storage", False, "unreachable", "resumes from its last checkpoint")
    assert error["type"] in RECOVERABLE


def test_a_base_model_that_cannot_be_reached_says_how_to_get_access(small_sample, tmp_path, monkeypatch):
    """No network here: the hub refuses, as it does a gated model without a token."""
    import dataclasses

    import handler.handler as handler_module
    from shared.storage import LocalStorage
    monkeypatch.setenv("STORAGE_LOCAL_ROOT", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("HF_TOKEN", raising=False)          # the hub library reads it itself
    monkeypatch.setattr(handler_module, "SETTINGS", dataclasses.replace(handler_module.SETTINGS, hf_token=None))
    _, raw = _job_input("meta-llama/Meta-Llama-3-70B-Instruct", small_sample, LocalStorage(tmp_path), max_steps=2)
    error = _run_handler(raw)[-1]["error"]
    _assert_explained(error, "base_model_access", True, "Meta-Llama-3-70B-Instruct")


def test_no_capacity_fails_the_job_after_the_provisioning_timeout(app, client, auth, upload, small_sample):
    """A local endpoint with no worker at all: the job waits in its queue, then fails."""
    from rq import SimpleWorker

    from control.extensions import db
    from control.local_endpoint import LocalEndpoint
    from control.models import TrainingJob
    from control.services.queue import get_queue, redis_connection

    ep = LocalEndpoint(workers=0)
    ep.start()
    try:
        app.config.update(RUNPOD_ENDPOINT_BASE_URL=ep.base_url, RUNPOD_ENDPOINT_ID=ep.endpoint_id,
                          PROVISIONING_TIMEOUT_SECONDS=0.5)
        file_id = upload(small_sample).get_json()["id"]
        job_id = client.post("/api/training/jobs", headers=auth, json={
            "training_file_id": file_id, "start": True}).get_json()["id"]
        SimpleWorker([get_queue()], connection=redis_connection()).work(burst=True, max_jobs=1)   # dispatch
        import time
        time.sleep(0.6)
        SimpleWorker([get_queue()], connection=redis_connection()).work(burst=True, max_jobs=1)   # monitor
        db.session.expire_all()
        job = db.session.get(TrainingJob, job_id)
        assert job.status == "failed" and job.error_type == "gpu_provisioning" and job.error_user is False
        assert "stayed in the queue" in job.error_message
        assert "on-demand" in job.error_fix and "GPU" in job.error_cause
        assert ep.health()["jobs"]["inQueue"] == 0                    # nothing left waiting or billing
    finally:
        ep.stop()


def test_a_cancel_is_recorded_as_the_users_with_who_and_when(app, client, auth, upload, small_sample):
    from control.extensions import db
    from control.models import TrainingJob
    file_id = upload(small_sample).get_json()["id"]
    job_id = client.post("/api/training/jobs", headers=auth, json={"training_file_id": file_id}).get_json()["id"]
    client.post(f"/api/training/jobs/{job_id}/cancel", headers=auth)
    job = db.session.get(TrainingJob, job_id)
    assert (job.status, job.error_type, job.error_user) == ("cancelled", "cancelled", True)
    assert "ana@example.com" in job.error_message and job.error_fix and job.error_cause


# ------------------------------------------------------------------ what the machine cannot provoke

def test_gpu_out_of_memory_suggests_half_the_batch_at_the_same_pairs_a_step():
    import torch
    exc = torch.OutOfMemoryError(
        "CUDA out of memory. Tried to allocate 3.91 GiB. GPU 0 has a total capacity of 79.11 GiB of which "
        "1.02 GiB is free. Process 2231 has 78.08 GiB memory in use.")
    failure = classify(exc, settings={"batch_size": 4, "gradient_accumulation_steps": 4, "max_seq_length": 2048},
                       gpu_memory_gb=80).to_dict()
    _assert_explained(failure, "out_of_memory", True, "Your dataset + batch_size=4", "80 GB",
                      "Try batch_size=2", "conservative preset")
    assert failure["adjustment"] == {"batch_size": 2, "gradient_accumulation_steps": 8}


def test_the_handler_classifies_a_real_out_of_memory_error(monkeypatch):
    import torch

    from handler.handler import _error_event
    from shared.events import EventStream
    event = _error_event(EventStream("tj_1", 1), torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB"),
                         {"batch_size": 1, "gradient_accumulation_steps": 16, "max_seq_length": 4096})
    assert event["error"]["type"] == "out_of_memory" and event["error"]["adjustment"] == {"max_seq_length": 2048}


def test_a_gated_model_says_to_accept_the_licence_and_set_the_token():
    import httpx
    from huggingface_hub.errors import GatedRepoError

    from handler.base_models import _hub_errors
    url = "https://huggingface.co/meta-llama/Meta-Llama-3-70B-Instruct/resolve/main/config.json"
    response = httpx.Response(401, request=httpx.Request("GET", url))
    with pytest.raises(Exception) as info:
        with _hub_errors("meta-llama/Meta-Llama-3-70B-Instruct"):
            raise GatedRepoError(f"401 Client Error. Cannot access gated repo for url {url}. Access to model "
                                 "meta-llama/Meta-Llama-3-70B-Instruct is restricted. You must have access "
                                 "to it and be authenticated to access it. Please log in.", response=response)
    failure = classify(info.value).to_dict()
    _assert_explained(failure, "base_model_access", True, "gated", "HF_TOKEN")


def test_a_gpu_fault_retires_the_worker_and_counts_as_recoverable():
    from handler import handler as handler_module
    from shared.events import EventStream
    handler_module.WORKER_CONFIG.pop("refresh_worker", None)
    try:
        event = handler_module._error_event(EventStream("tj_1", 1), RuntimeError(
            "CUDA error: an illegal memory access was encountered\nCUDA kernel errors might be "
            "asynchronously reported at some other API call"))
        _assert_explained(event["error"], "gpu_fault", False, "illegal memory access", "worker exits")
        assert event["error"]["type"] in RECOVERABLE
        assert handler_module.WORKER_CONFIG["refresh_worker"] is True
    finally:
        handler_module.WORKER_CONFIG.pop("refresh_worker", None)


@pytest.mark.parametrize("text,type_,user_error", [
    ("worker lost: worker local-1 was killed by SIGKILL", "worker_lost", False),
    ("httpx.ConnectError: [Errno 111] Connection refused", "storage", False),
    ("503 Server Error: Service Unavailable for url: https://x.supabase.co/storage/v1/object", "storage", False),
    ("TIMED_OUT: job exceeded executionTimeout", "timeout", False),
    ("Insufficient capacity: no instances available for H100_PCIE", "gpu_provisioning", False),
    ("KeyError: 'lm_head'", "internal", False),
])
def test_failures_known_only_by_their_text_are_classified(text, type_, user_error):
    failure = classify_text(text).to_dict()
    _assert_explained(failure, type_, user_error)
