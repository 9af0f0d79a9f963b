"""Fixtures: the sample dataset, a tiny random Llama built from a config (no download)
with the embedded model's real tokenizer and chat template, and job inputs."""
from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path

import pytest

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
    from handler import models
    return models.materialize(models.resolve(models.EMBEDDED))


@pytest.fixture(scope="session")
def tokenizer(embedded_dir):
    from handler.models import load_tokenizer
    return load_tokenizer(embedded_dir, "embedded")


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
