"""Fixtures: the sample dataset, a tiny random Llama built from a config (no download)
with the embedded model's real tokenizer and chat template, and job inputs."""
from __future__ import annotations

import copy
import hashlib
import json
import os
from pathlib import Path

import pytest

# No test downloads anything: the hub is offline from the first import of huggingface_hub
# (it reads this once), so a model that is not on disk fails at once instead of timing out.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "examples" / "sample_dataset.json"


@pytest.fixture(scope="session")
def sample_text() -> str:
    return SAMPLE.read_text()


@pytest.fixture
def sample_doc(sample_text) -> dict:
    return copy.deepcopy(json.loads(sample_text))


@pytest.fixture(scope="session")
def small_sample(sample_text) -> bytes:
    """The sample's first 8 conversations: enough to learn from, quick on a CPU."""
    doc = json.loads(sample_text)
    doc["conversations"] = doc["conversations"][:8]
    doc["training_file_metadata"]["total_conversations"] = 8
    doc["training_file_metadata"]["total_training_pairs"] = sum(
        len(c["training_pairs"]) for c in doc["conversations"])
    return json.dumps(doc).encode()


@pytest.fixture
def write_json(tmp_path):
    def write(doc, name="data.json") -> Path:
        path = tmp_path / name
        path.write_text(json.dumps(doc) if not isinstance(doc, str) else doc)
        return path
    return write


@pytest.fixture(scope="session")
def embedded_dir() -> str:
    """The embedded SmolLM2-135M-Instruct, converted once from its GGUF file and cached."""
    from handler import base_models
    from handler.settings import HandlerSettings
    return base_models.materialize(base_models.resolve(base_models.EMBEDDED),
                                   HandlerSettings.from_env().model_cache)


@pytest.fixture(scope="session")
def tokenizer(embedded_dir):
    from handler.base_models import load_tokenizer
    from handler.settings import HandlerSettings
    return load_tokenizer(embedded_dir, "embedded", HandlerSettings.from_env().hf_token)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tokenizer) -> str:
    """A 2-layer random Llama with the embedded model's tokenizer (fast on a CPU)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM
    path = tmp_path_factory.mktemp("tiny-llama")
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=4096, tie_word_embeddings=True,
                         initializer_range=0.5,  # logits wide enough for LoRA to move the loss
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)
    LlamaForCausalLM(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


@pytest.fixture
def make_job(tmp_path):
    """Upload a dataset to a fresh local store and build a job input for it."""
    from shared.job_input import Hyperparameters, JobInput
    from shared.storage import LocalStorage

    def make(base_model: str, data: bytes, *, preset="balanced", job_id="job1",
             every=100, fold=True, fraction=0.2, seed=42, storage=None, **overrides):
        storage = storage or LocalStorage(tmp_path / "store")
        sha = hashlib.sha256(data).hexdigest()
        storage.put_bytes(f"datasets/{sha}.json", data)
        hp = Hyperparameters.for_preset(preset, overrides)
        job = JobInput.parse({
            "job_id": job_id, "attempt": 1,
            "dataset": {"key": f"datasets/{sha}.json", "sha256": sha},
            "base_model": base_model, "preset": preset,
            "hyperparameters": hp.model_dump(mode="json"),
            "checkpoint": {"every_steps": every, "prefix": f"jobs/{job_id}"},
            "validation": {"fraction": fraction, "seed": seed},
            "data": {"fold": fold}, "seed": seed})
        return job, storage
    return make


# ------------------------------------------------------------------- control plane
# The control plane's tests run against the real PostgreSQL and Redis of these machines,
# and against SQLite. Each test gets empty tables and its own RQ queue.
import os  # noqa: E402
import tempfile  # noqa: E402
import uuid  # noqa: E402

os.environ.setdefault("BRIGHTRUN_DATA_DIR", tempfile.mkdtemp(prefix="brightrun-test-"))
POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _per_worker(postgres_url: str, redis_url: str, worker: str | None) -> tuple[str, str]:
    """Under pytest-xdist (``make test`` runs two workers) each worker has a database of its
    own (``<name>_gw1``, made when missing) and the Redis database after the last one's.

    >>> _per_worker("postgresql+psycopg://u@h:5432/test", "redis://h:6379/3", None)
    ('postgresql+psycopg://u@h:5432/test', 'redis://h:6379/3')
    """
    if not worker:
        return postgres_url, redis_url
    n = int(worker.removeprefix("gw"))
    server, _, name = postgres_url.rpartition("/")
    own = f"{name}_{worker}"
    import psycopg
    with psycopg.connect(server.replace("postgresql+psycopg://", "postgresql://") + "/" + name,
                         autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (own,)).fetchone() is None:
            conn.execute(f'CREATE DATABASE "{own}"')
    redis_server, _, index = redis_url.rpartition("/")
    return f"{server}/{own}", f"{redis_server}/{(int(index or 0) + n) % 16}"


POSTGRES_URL, REDIS_URL = _per_worker(POSTGRES_URL, REDIS_URL, os.environ.get("PYTEST_XDIST_WORKER"))

LIVE = ("faults", "browser")    # tests that run the whole system with its timers: one xdist worker


def pytest_collection_modifyitems(items):
    """The live-system tests (faults, browser) run one after another on one worker (``--dist
    loadgroup``), so two of them never share the CPU; the rest are spread over the workers."""
    for item in items:
        if item.path.parent.name in LIVE:
            item.add_marker(pytest.mark.xdist_group("live"))


def _fresh_schema(app) -> None:
    """Drop everything, then build the schema with the migrations (as production does)."""
    from flask_migrate import upgrade
    from sqlalchemy import text

    from control.extensions import db
    with app.app_context():
        with db.engine.begin() as conn:
            if db.engine.dialect.name == "postgresql":
                conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        upgrade()


_migrated: set = set()


@pytest.fixture(params=["postgres", "sqlite"])
def app(request, tmp_path):
    """The app on Postgres and on SQLite, migrated, with empty tables and local storage."""
    from control.app import create_app
    from control.extensions import db

    url = POSTGRES_URL if request.param == "postgres" else f"sqlite:///{tmp_path / 'test.db'}"
    app = create_app({
        "TESTING": True, "SQLALCHEMY_DATABASE_URI": url, "REDIS_URL": REDIS_URL,
        "QUEUE_NAME": f"test-{uuid.uuid4().hex[:8]}",
        "STORAGE_ENV": {"STORAGE_BACKEND": "local", "STORAGE_LOCAL_ROOT": str(tmp_path / "storage")},
        "SECRET_KEY": "test-secret", "MONITOR_INTERVAL_SECONDS": 0,
        # The tests' base models, as an operator lists them (a test that trains the tiny model
        # gets its directory on the list); and a request rate no test reaches by accident.
        "BASE_MODELS": ("meta-llama/Meta-Llama-3-70B-Instruct", "embedded",
                        *([request.getfixturevalue("tiny_model_dir")]
                          if "tiny_model_dir" in request.fixturenames else [])),
        "API_RATE_LIMIT": "100000 per minute", "SHARE_RATE_LIMIT": "100000 per minute",
        # No completion webhook unless a test asks (it would call PUBLIC_BASE_URL, a port of this machine).
        "COMPLETION_WEBHOOK": False,
        # Every GPU choice goes to the local endpoint (production maps each to its own).
        "GPU_ENDPOINTS": {f"{gpu}:{tier}": "local" for gpu in ("LOCAL_CPU", "H100_PCIE", "A100_80GB")
                          for tier in ("spot", "on_demand")},
    })
    if url not in _migrated or request.param == "sqlite":
        _fresh_schema(app)
        _migrated.add(url)
    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            names = ", ".join(t.name for t in db.metadata.sorted_tables)
            db.session.execute(db.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
            db.session.commit()
        yield app
        db.session.remove()
        from control.services.queue import get_queue, notify_queue
        get_queue().empty()
        notify_queue().empty()
        db.engine.dispose()         # each test's app has its own pool: close it, or they pile up


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def make_user(app):
    """``make_user(email, role)`` -> (user id, Authorization headers)."""
    from control.extensions import db
    from control.models import ApiToken, User

    def make(email="ana@example.com", role="engineer"):
        user = User(email=email, role=role)
        row, plain = ApiToken.issue(user)
        db.session.add_all([user, row])
        db.session.commit()
        return user.id, {"Authorization": f"Bearer {plain}"}
    return make


@pytest.fixture
def make_person(app):
    """``make_person(email, role, password)`` -> a user who signs in to the console."""
    from control.extensions import db
    from control.models import User

    def make(email="ana@example.com", role="engineer", password="correct-horse-battery"):
        user = User(email=email, role=role)
        user.set_password(password)
        db.session.add(user)
        db.session.commit()
        return user
    return make


@pytest.fixture
def auth(make_user):
    return make_user()[1]


@pytest.fixture
def upload(app, client, auth):
    """Upload bytes as a training file with ``?wait=true``, its validation task run in this
    process meanwhile; returns the response (201 with statistics, or 422 with every problem)."""
    def do(data: bytes, filename="data.json", headers=None):
        import io

        from tests.validation_tasks import validating_in_background
        with validating_in_background(app):
            return client.post("/api/training-files?wait=true", headers=headers or auth,
                               data={"file": (io.BytesIO(data), filename)},
                               content_type="multipart/form-data")
    return do


@pytest.fixture
def file_id(upload, small_sample):
    """The small sample uploaded through the API (validated, ready): its id."""
    r = upload(small_sample)
    assert r.status_code == 201, r.get_json()
    return r.get_json()["id"]


@pytest.fixture
def job(client, auth, upload, small_sample):
    """A job of the small sample with one attempt running on the endpoint (as ``rp-1``)."""
    file_id = upload(small_sample).get_json()["id"]
    body = client.post("/api/training/jobs", headers=auth, json={"training_file_id": file_id}).get_json()
    from control.extensions import db
    from control.models import JobAttempt, TrainingJob
    job = db.session.get(TrainingJob, body["id"])
    attempt = JobAttempt(job=job, number=1, runpod_job_id="rp-1", runpod_status="IN_PROGRESS")
    job.status = "provisioning"
    db.session.add(attempt)
    db.session.commit()
    return job
