"""The two contracts (job input, events), presets, storage and checkpoint atomicity."""
from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from shared.errors import ConfigError, StorageError
from shared.events import EventStream, parse_event
from shared.job_input import Hyperparameters, JobInput
from shared.presets import PRESETS
from shared.storage import LocalStorage


def job_dict(**extra):
    return {"job_id": "tj_1", "dataset": {"key": "d.json", "sha256": "a" * 64},
            "hyperparameters": Hyperparameters.for_preset("balanced").model_dump(mode="json"),
            "checkpoint": {"prefix": "jobs/tj_1"}, **extra}


def test_presets_match_the_product_documents():
    c, b, a = (PRESETS[n].hyperparameters() for n in ("conservative", "balanced", "aggressive"))
    assert (c["lora_r"], c["lora_alpha"], c["learning_rate"], c["num_epochs"],
            c["batch_size"], c["gradient_accumulation_steps"], c["lora_dropout"]) == (8, 16, 1e-4, 2, 2, 8, 0.05)
    assert (b["lora_r"], b["lora_alpha"], b["learning_rate"], b["num_epochs"],
            b["batch_size"], b["gradient_accumulation_steps"], b["lora_dropout"]) == (16, 32, 2e-4, 3, 4, 4, 0.05)
    assert (a["lora_r"], a["lora_alpha"], a["learning_rate"], a["num_epochs"],
            a["batch_size"], a["gradient_accumulation_steps"], a["lora_dropout"]) == (32, 64, 3e-4, 4, 4, 4, 0.1)
    for p in (c, b, a):
        assert p["target_modules"] == ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
        assert (p["lr_scheduler"], p["warmup_ratio"], p["max_seq_length"]) == ("cosine", 0.03, 2048)


def test_a_preset_is_overridable_field_by_field_and_refuses_unknown_or_bad_values():
    hp = Hyperparameters.for_preset("conservative", {"learning_rate": 5e-5, "max_steps": 10})
    assert (hp.learning_rate, hp.max_steps, hp.lora_r) == (5e-5, 10, 8)
    with pytest.raises(ConfigError) as info:
        Hyperparameters.for_preset("balanced", {"num_epochs": -1, "batch_size": "4"})
    fields = {p.field for p in info.value.problems}
    assert fields == {"num_epochs", "batch_size"}
    with pytest.raises(ConfigError, match="unknown preset 'turbo'"):
        Hyperparameters.for_preset("turbo")
    with pytest.raises(ConfigError, match='field "lr"'):
        Hyperparameters.for_preset("balanced", {"lr": 1})


def test_job_input_refuses_anything_it_does_not_define_such_as_secrets():
    JobInput.parse(job_dict())
    with pytest.raises(ConfigError) as info:
        JobInput.parse(job_dict(supabase_service_key="eyJ..."))
    [p] = info.value.problems
    assert (p.field, p.message) == ("supabase_service_key", "unknown field")
    with pytest.raises(ConfigError):
        JobInput.parse(job_dict(job_id="../../etc"))


def test_the_fingerprint_follows_what_determines_the_result_only():
    a = JobInput.parse(job_dict())
    assert a.fingerprint() == JobInput.parse(job_dict(attempt=3)).fingerprint()
    assert a.fingerprint() == JobInput.parse({**job_dict(), "checkpoint": {"prefix": "x", "every_steps": 5}}).fingerprint()
    b = JobInput.parse(job_dict(seed=1))
    assert a.fingerprint() != b.fingerprint()
    assert a.differences(b) == ["seed: 42 -> 1"]


def test_events_carry_job_attempt_and_a_monotonic_seq():
    stream = EventStream("tj_1", 2)
    events = [stream.make("stage", stage="training"),
              stream.make("metrics", step=1, total_steps=9, epoch=0.1, loss=2.0, lr=1e-4),
              stream.make("error", error={"type": "internal", "user_error": False, "message": "x"})]
    assert [e["seq"] for e in events] == [0, 1, 2]
    assert all(e["job_id"] == "tj_1" and e["attempt"] == 2 and e["ts"] for e in events)
    # RunPod fails a job on a yielded dict with a truthy "error": only error events have one.
    assert [("error" in e) for e in events] == [False, False, True]
    assert parse_event(json.loads(json.dumps(events[1]))).loss == 2.0
    with pytest.raises(ValidationError):
        stream.make("stage", stage="sleeping")


def test_local_storage_writes_atomically_and_refuses_escaping_keys(tmp_path):
    store = LocalStorage(tmp_path)
    store.put_bytes("a/b/c.txt", b"hello")
    assert store.get_bytes("a/b/c.txt") == b"hello"
    assert store.list("a") == ["a/b/c.txt"] and store.exists("a/b/c.txt")

    class Boom(Exception):
        pass

    def failing_write(fh):
        fh.write(b"half")
        raise Boom
    with pytest.raises(Boom):
        store._atomic_write(tmp_path / "a/b/c.txt", failing_write)
    assert store.get_bytes("a/b/c.txt") == b"hello"          # the old object is intact
    assert store.list("a") == ["a/b/c.txt"]                    # and no partial file is left
    for bad in ("../x", "/etc/passwd", "a/../../x", ""):
        with pytest.raises(StorageError):
            store.put_bytes(bad, b"x")
    with pytest.raises(StorageError, match="no object"):
        store.get_bytes("missing")


def test_only_manifested_undamaged_checkpoints_count(tmp_path):
    from handler import checkpoint
    store = LocalStorage(tmp_path / "s")
    f = tmp_path / "w.bin"
    f.write_bytes(b"weights-1")
    checkpoint.save(store, "jobs/j", 100, {"w.bin": f}, {"fingerprint": "x"})
    f.write_bytes(b"weights-2")
    checkpoint.save(store, "jobs/j", 200, {"w.bin": f}, {"fingerprint": "x"})
    # A checkpoint whose manifest was never written (worker killed mid-upload) is ignored.
    store.put_bytes("jobs/j/checkpoints/step-00000300/w.bin", b"partial")
    assert [c.step for c in checkpoint.candidates(store, "jobs/j")] == [200, 100]
    # A damaged file is detected against the manifest.
    store.put_bytes("jobs/j/checkpoints/step-00000200/w.bin", b"weights-X")
    newest = checkpoint.candidates(store, "jobs/j")[0]
    with pytest.raises(StorageError, match="does not match its manifest"):
        checkpoint.download(store, newest, tmp_path / "dl")
    checkpoint.prune(store, "jobs/j", keep=1)
    assert [c.step for c in checkpoint.candidates(store, "jobs/j")] == [200]
