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
    from shared.storage.layout import JobLayout, complete_checkpoints
    store = LocalStorage(tmp_path / "s")
    layout = JobLayout("jobs/j")
    f = tmp_path / "w.bin"
    f.write_bytes(b"weights-1")
    checkpoint.save(store, layout, 100, {"w.bin": f}, {"fingerprint": "x"})
    f.write_bytes(b"weights-2")
    checkpoint.save(store, layout, 200, {"w.bin": f}, {"fingerprint": "x"})
    # A checkpoint whose manifest was never written (worker killed mid-upload) is ignored.
    store.put_bytes("jobs/j/checkpoints/step-00000300/w.bin", b"partial")
    assert [c.step for c in complete_checkpoints(store, layout)] == [200, 100]
    # A damaged file is detected against the manifest.
    store.put_bytes("jobs/j/checkpoints/step-00000200/w.bin", b"weights-X")
    newest = complete_checkpoints(store, layout)[0]
    with pytest.raises(StorageError, match="does not match its manifest"):
        checkpoint.download(store, newest, tmp_path / "dl")
    checkpoint.prune(store, layout, keep=1)
    assert [c.step for c in complete_checkpoints(store, layout)] == [200]


# ------------------------------------------------- single settings, defined once
def _number_schema(prop: dict) -> dict:
    """A JSON-schema property's number type and bounds, whether or not it may be null."""
    [branch] = [b for b in prop.get("anyOf", [prop]) if b.get("type") != "null"]
    return {k: v for k, v in branch.items()
            if k in ("type", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")}


def _job_input_settings() -> dict[str, dict]:
    """Every single setting a request may override, with its type and bounds, read from the
    job input's own JSON schema: the numbers a preset fills, the step limit, and the
    checkpoint interval (which a request caps at 100000, below the job input's cap)."""
    schema = JobInput.model_json_schema()
    hp = schema["$defs"]["Hyperparameters"]["properties"]
    preset_filled = PRESETS["balanced"].hyperparameters()
    out = {name: _number_schema(prop) for name, prop in hp.items()
           if (name in preset_filled or name == "max_steps")
           and _number_schema(prop).get("type") in ("integer", "number")}
    every = _number_schema(schema["$defs"]["CheckpointSettings"]["properties"]["every_steps"])
    out["checkpoint_every_steps"] = {**every, "maximum": 100000}
    return out


def test_every_surface_takes_the_single_settings_and_bounds_of_the_job_input():
    from shared.job_input import OVERRIDABLE
    from control.schemas import CostQuery, CreateJob, HyperparameterOverrides
    truth = _job_input_settings()
    assert set(truth) == set(OVERRIDABLE) and len(OVERRIDABLE) == 11

    # The request schema (the JSON API and the console validate with it), as OpenAPI shows it.
    schema = HyperparameterOverrides.model_json_schema()
    assert not schema.get("required") and schema.get("additionalProperties") is False
    assert {n: _number_schema(p) for n, p in schema["properties"].items()} == truth
    assert all(p["default"] is None and p.get("description") for p in schema["properties"].values())
    assert CreateJob.model_json_schema()["$defs"]["HyperparameterOverrides"]["properties"] == schema["properties"]

    # The cost estimate's query: exactly the settings that change its steps, same bounds.
    query = CostQuery.model_json_schema()["properties"]
    settings = {n: _number_schema(p) for n, p in query.items() if n in truth}
    assert set(settings) == {"num_epochs", "batch_size", "gradient_accumulation_steps", "lora_r", "max_steps"}
    assert settings == {n: truth[n] for n in settings}
    assert set(query) - set(settings) == {"training_file_id", "preset", "base_model", "method",
                                          "gpu_type", "pricing"}

    # Every bound refuses just beyond itself and accepts itself, in both (query strings are text).
    for model, names, strict in ((HyperparameterOverrides, truth, True), (CostQuery, settings, False)):
        base = {"training_file_id": "f"} if model is CostQuery else {}
        for name in names:
            for at, beyond in _edges(truth[name]):
                with pytest.raises(ValidationError):
                    model.model_validate({**base, name: beyond if strict else str(beyond)}, strict=strict)
                if at is not None:
                    got = model.model_validate({**base, name: at if strict else str(at)}, strict=strict)
                    assert getattr(got, name) == at
    # A whole number is a number: JSON 1 for a float setting is 1.0.
    got = HyperparameterOverrides.model_validate_json('{"learning_rate": 1, "lora_alpha": 8}')
    assert (got.learning_rate, got.lora_alpha) == (1.0, 8.0) and type(got.learning_rate) is float


def _edges(bounds: dict):
    """(a value at the bound, or None where the bound is exclusive; a value just beyond)."""
    step = 1 if bounds["type"] == "integer" else 0.001
    if "minimum" in bounds:
        yield bounds["minimum"], bounds["minimum"] - step
    if "exclusiveMinimum" in bounds:
        yield None, bounds["exclusiveMinimum"]
    if "maximum" in bounds:
        yield bounds["maximum"], bounds["maximum"] + step
    if "exclusiveMaximum" in bounds:
        yield None, bounds["exclusiveMaximum"]


def test_the_console_form_has_a_field_per_single_setting_with_its_step():
    from control.console.job_form import OVERRIDES
    truth = _job_input_settings()
    assert OVERRIDES == {n: "1" if truth[n]["type"] == "integer" else "any" for n in truth}
    from control.schemas import HyperparameterOverrides
    assert list(OVERRIDES) == list(HyperparameterOverrides.model_fields)


def test_pipeline_train_has_an_option_per_single_setting_checked_by_the_job_input(
        sample_doc, write_json, tmp_path, monkeypatch):
    import click
    from control import cli
    truth = _job_input_settings()
    every = JobInput.model_json_schema()["$defs"]["CheckpointSettings"]["properties"]["every_steps"]
    truth["checkpoint_every_steps"]["maximum"] = every["maximum"]    # the job input's cap, not a request's
    command = cli.main.commands["train"]
    options = {p.opts[0]: p for p in command.params if isinstance(p, click.Option)}
    flags = {name: cli.setting_flag(name) for name in truth}
    # The flags users know, and one for every other setting.
    assert {"--epochs", "--batch-size", "--grad-accum", "--learning-rate", "--lora-r", "--lora-alpha",
            "--max-seq-length", "--max-steps", "--checkpoint-every"} <= set(flags.values()) <= set(options)
    assert set(options) - set(flags.values()) == {"--out", "--preset", "--base-model", "--method", "--seed",
                                                  "--validation-fraction", "--min-quality", "--fold", "--quiet",
                                                  "--eval-size", "--max-new-tokens", "--prompts"}
    assert list(options["--preset"].type.choices) == ["conservative", "balanced", "aggressive"]
    assert sorted(options["--method"].type.choices) == ["lora", "qlora"]
    help_text = command.get_help(click.Context(command, info_name="train"))
    for name, flag in flags.items():
        option = options[flag]
        assert option.type is (click.INT if truth[name]["type"] == "integer" else click.FLOAT), flag
        assert option.help and option.help[0].isupper(), flag
        assert _range_text(truth[name]) in option.help, (flag, option.help)
        assert flag in help_text

    # The bounds are the job input's: each refuses just beyond itself and accepts itself.
    runs = []
    monkeypatch.setattr(cli, "_run_training", lambda job, *a, **k: runs.append(job))
    good = write_json(sample_doc)
    for name, flag in flags.items():
        for at, beyond in _edges(truth[name]):
            out = tmp_path / f"run-{len(runs)}-{name}"
            result = invoke_cli(cli.main, "train", good, "--out", out, flag, beyond)
            assert result.exit_code == 2 and not out.exists(), (flag, beyond, result.output)
            if at is not None:
                before = len(runs)
                result = invoke_cli(cli.main, "train", good, "--out", out, flag, at)
                assert result.exit_code == 0 and len(runs) == before + 1, (flag, at, result.output)
                job = runs[-1]
                got = (job.checkpoint.every_steps if name == "checkpoint_every_steps"
                       else getattr(job.hyperparameters, name))
                assert got == at, (flag, got)


def _range_text(bounds: dict) -> str:
    low = (f"{bounds['minimum']}<=" if "minimum" in bounds
           else f"{bounds['exclusiveMinimum']}<" if "exclusiveMinimum" in bounds else "")
    high = (f"<={bounds['maximum']}" if "maximum" in bounds
            else f"<{bounds['exclusiveMaximum']}" if "exclusiveMaximum" in bounds else "")
    if low and not high:
        return "x>=" + str(bounds["minimum"]) if "minimum" in bounds else "x>" + str(bounds["exclusiveMinimum"])
    return f"{low}x{high}"


def invoke_cli(main, *args):
    from click.testing import CliRunner
    return CliRunner().invoke(main, [str(a) for a in args])


def test_the_preset_and_method_names_are_defined_once():
    from typing import get_args
    from shared.job_input import Method, PresetName
    from control.schemas import CostQuery, CreateJob
    assert set(get_args(PresetName)) == set(PRESETS)
    for model in (CreateJob, CostQuery):
        props = model.model_json_schema()["properties"]
        assert props["preset"]["enum"] == list(get_args(PresetName))
        assert props["method"]["anyOf"][0]["enum"] == list(get_args(Method))
