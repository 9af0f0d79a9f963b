"""The recipe on a tiny random Llama (built from a config, no download): it learns, LoRA
weights change, QLoRA runs on the CPU, folding leaves the loss unchanged, the adapter
loads with PEFT, and the handler reports events and errors."""
from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from handler.losses import token_losses
from handler.recipe import Recipe
from handler.settings import HandlerSettings
from shared.events import STAGES, parse_event

pytestmark = pytest.mark.slow


def run(job, storage, **kw):
    recipe = Recipe(job, storage, **kw)
    return recipe, list(recipe.run())


@pytest.fixture(scope="module")
def trained(tiny_model_dir, small_sample, tmp_path_factory):
    """One real training run shared by several tests."""
    from shared.storage import LocalStorage
    storage = LocalStorage(tmp_path_factory.mktemp("store"))
    job = _job(tiny_model_dir, small_sample, storage, batch_size=1,
               gradient_accumulation_steps=2, learning_rate=2e-2, num_epochs=3, lora_dropout=0.0)
    recipe, events = run(job, storage)
    return recipe, events, storage, job


def _job(base_model, data, storage, *, method="lora", every=100, **overrides):
    import hashlib
    from shared.job_input import Hyperparameters, JobInput
    sha = hashlib.sha256(data).hexdigest()
    storage.put_bytes(f"datasets/{sha}.json", data)
    return JobInput.parse({
        "job_id": "job1", "dataset": {"key": f"datasets/{sha}.json", "sha256": sha},
        "base_model": base_model, "method": method,
        "hyperparameters": Hyperparameters.for_preset("balanced", overrides).model_dump(mode="json"),
        "checkpoint": {"every_steps": every, "prefix": "jobs/job1"}, "evaluation": {"size": "perplexity"}})


def test_it_learns_the_training_data_and_beats_the_base_on_held_out_conversations(trained):
    recipe, events, storage, job = trained
    losses = [e["loss"] for e in events if e["type"] == "metrics"]
    assert len(losses) == recipe.total_steps >= 12
    assert sum(losses[-5:]) / 5 < 0.9 * sum(losses[:5]) / 5
    summary = events[-1]["summary"]
    assert summary["eval"]["trained"]["perplexity"] < summary["eval"]["base"]["perplexity"]
    assert summary["eval"]["improvement_pct"] > 0
    assert summary["data"]["train_pairs"] + summary["data"]["validation_pairs"] == 23


def test_lora_weights_change_and_only_lora_weights_are_saved(trained):
    recipe, events, storage, job = trained
    weights = load_file(str(storage.root / "jobs/job1/adapter/adapter_model.safetensors"))
    assert weights and all("lora_" in k for k in weights)
    lora_b = [v for k, v in weights.items() if "lora_B" in k]   # PEFT starts B at zero
    assert len(lora_b) == 2 * 7 and all(v.abs().sum() > 0 for v in lora_b)


def test_metrics_log_the_rate_each_step_used_and_epoch_progress(trained):
    recipe, events, storage, job = trained
    metrics = [e for e in events if e["type"] == "metrics"]
    # Warmup is ceil(3% of the steps) = 1 step: step 1 runs at 0, step 2 at the peak rate,
    # then the cosine decays it.
    assert metrics[0]["lr"] == 0.0
    assert metrics[1]["lr"] == pytest.approx(2e-2)
    assert all(a["lr"] >= b["lr"] for a, b in zip(metrics[1:], metrics[2:]))
    epochs = [m["epoch"] for m in metrics]
    assert epochs == sorted(epochs) and epochs[-1] == 3.0
    assert [e for e in epochs if e == int(e)] == [1.0, 2.0, 3.0]


def test_the_event_stream_follows_the_contract(trained):
    recipe, events, storage, job = trained
    for e in events:
        parse_event(e)
    assert [e["seq"] for e in events] == list(range(len(events)))
    stages = [e["stage"] for e in events if e["type"] == "stage"]
    assert stages == list(STAGES)
    assert events[-1]["type"] == "completed"
    kinds = [e["kind"] for e in events if e["type"] == "artifact"]
    assert kinds == ["evaluation", "adapter", "metrics", "summary"]
    steps = [json.loads(line)["step"] for line in
             storage.get_bytes("jobs/job1/metrics.jsonl").decode().splitlines()]
    assert steps == list(range(1, recipe.total_steps + 1))


def test_batches_hold_the_presets_training_pairs_per_step_and_little_padding(trained):
    recipe, events, storage, job = trained
    seqs = recipe.train.sequences
    for epoch, indices in recipe.plan[:-1]:
        got = sum(seqs[i].n_targets for i in indices)
        assert got >= 2 and got - max(seqs[i].n_targets for i in indices) < 2
    assert events[-1]["summary"]["padding_fraction"] < 0.1


def test_the_saved_adapter_loads_with_peft_and_scores_as_trained(trained, tiny_model_dir):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM
    recipe, events, storage, job = trained
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    model = PeftModel.from_pretrained(base, str(storage.root / "jobs/job1/adapter")).eval()
    total = count = 0
    with torch.no_grad():
        for enc in recipe.val.sequences:
            ids = torch.tensor([enc.input_ids])
            losses = token_losses(model, ids, torch.ones_like(ids), torch.tensor([enc.trained]))
            total += losses.double().sum().item()
            count += losses.numel()
    assert total / count == pytest.approx(events[-1]["summary"]["eval"]["trained"]["loss"], abs=1e-4)


def test_a_finished_job_run_again_reports_its_result_without_training(trained):
    recipe, events, storage, job = trained
    again = list(Recipe(job, storage).run())
    assert [e["type"] for e in again] == ["completed"]
    assert again[0]["summary"] == events[-1]["summary"]


def test_folded_and_unfolded_sequences_give_the_same_loss_on_the_same_targets(tiny_model_dir, sample_doc,
                                                                             write_json, tokenizer):
    from transformers import AutoModelForCausalLM
    from handler.tokenization import encode_conversations
    from shared.dataset import load_dataset
    from shared.dataset.folding import fold_conversation, single
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    convs = load_dataset(write_json(sample_doc)).conversations[:4]
    folded = encode_conversations(tokenizer, convs, fold_conversation, 4096)
    unfolded = encode_conversations(tokenizer, convs, lambda c: [single(e) for e in c.examples], 4096)
    assert folded.unfolded_conversations == []
    assert folded.target_tokens == unfolded.target_tokens
    assert folded.tokens < 0.6 * unfolded.tokens
    # The pair-by-pair cost reported for folded data is what tokenizing each pair gives.
    assert folded.tokens_unfolded == unfolded.tokens == unfolded.tokens_unfolded

    def per_target(split):
        out = {}
        with torch.no_grad():
            for enc in split.sequences:
                ids = torch.tensor([enc.input_ids])
                losses = token_losses(model, ids, torch.ones_like(ids), torch.tensor([enc.trained]))
                # Split this row's trained tokens back into its targets, in order.
                runs, pos, prev = [], 0, False
                for t in enc.trained[1:]:
                    if t and not prev:
                        runs.append([])
                    if t:
                        runs[-1].append(losses[pos].item())
                        pos += 1
                    prev = t
                for ex_id, vals in zip(enc.example_ids, runs):
                    out[ex_id] = vals
        return out

    a, b = per_target(folded), per_target(unfolded)
    assert a.keys() == b.keys() and len(a) == sum(len(c.examples) for c in convs)
    for ex_id in a:
        assert a[ex_id] == pytest.approx(b[ex_id], abs=2e-4), ex_id


def test_qlora_trains_on_the_cpu_with_a_4bit_nf4_base(tiny_model_dir, small_sample, tmp_path):
    import bitsandbytes as bnb
    from shared.storage import LocalStorage
    storage = LocalStorage(tmp_path)
    job = _job(tiny_model_dir, small_sample, storage, method="qlora", batch_size=2,
               gradient_accumulation_steps=1, learning_rate=3e-3, max_steps=4)
    recipe, events = run(job, storage)
    quantized = [m for m in recipe.model.modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert len(quantized) == 2 * 7
    assert quantized[0].weight.quant_type == "nf4" and quantized[0].weight.dtype == torch.uint8
    assert quantized[0].weight.quant_state.nested          # double quantization
    assert events[-1]["type"] == "completed" and events[-1]["summary"]["steps"] == 4
    weights = load_file(str(tmp_path / "jobs/job1/adapter/adapter_model.safetensors"))
    assert all(v.abs().sum() > 0 for k, v in weights.items() if "lora_B" in k)


def test_the_handler_yields_the_recipes_events(tiny_model_dir, small_sample, tmp_path, monkeypatch):
    from handler.handler import handler
    from shared.storage import LocalStorage
    monkeypatch.setenv("STORAGE_LOCAL_ROOT", str(tmp_path))
    job = _job(tiny_model_dir, small_sample, LocalStorage(tmp_path), max_steps=2)
    events = list(handler({"id": "rp-1", "input": job.model_dump(mode="json")}))
    assert events[0]["type"] == "stage" and events[-1]["type"] == "completed"
    assert (tmp_path / "jobs/job1/adapter/adapter_config.json").is_file()


def test_the_handler_turns_bad_input_into_one_classified_error_event():
    from handler.handler import handler
    [event] = handler({"id": "rp-1", "input": {"job_id": "tj_9", "attempt": 2, "dataset": {}}})
    assert event["type"] == "error" and (event["job_id"], event["attempt"]) == ("tj_9", 2)
    assert event["error"]["type"] == "invalid_config" and event["error"]["user_error"] is True
    assert "Traceback" not in json.dumps(event)


def test_the_handler_reports_a_changed_dataset_as_a_user_error(tiny_model_dir, small_sample, tmp_path, monkeypatch):
    from handler.handler import handler
    from shared.storage import LocalStorage
    monkeypatch.setenv("STORAGE_LOCAL_ROOT", str(tmp_path))
    job = _job(tiny_model_dir, small_sample, LocalStorage(tmp_path), max_steps=2)
    (tmp_path / job.dataset.key).write_text("{}")
    events = list(handler({"id": "rp-1", "input": job.model_dump(mode="json")}))
    assert events[-1]["type"] == "error"
    assert events[-1]["error"]["type"] == "dataset_format" and "sha256" in events[-1]["error"]["message"]


def test_a_template_that_rewrites_earlier_turns_trains_those_pairs_unfolded(tokenizer, sample_doc, write_json):
    from handler.tokenization import encode_conversations
    from shared.dataset import load_dataset
    from shared.dataset.folding import fold_conversation
    convs = load_dataset(write_json(sample_doc)).conversations[:3]
    original = tokenizer.chat_template
    # Like templates that strip reasoning from earlier replies: only the last reply is whole.
    tokenizer.chat_template = (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n"
        "{% if m['role'] == 'assistant' and not loop.last %}(earlier reply){% else %}{{ m['content'] }}{% endif %}"
        "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
    try:
        split = encode_conversations(tokenizer, convs, fold_conversation, 4096)
    finally:
        tokenizer.chat_template = original
    assert split.unfolded_conversations == [c.id for c in convs]
    assert len(split.sequences) == split.targets == sum(len(c.examples) for c in convs)


def test_each_run_of_an_attempt_numbers_its_events_in_a_block_of_its_own(trained):
    from handler.recipe import SEQ_BLOCK
    recipe, events, storage, job = trained
    first, second = Recipe(job, storage), Recipe(job, storage)
    assert second.events.seq - first.events.seq == SEQ_BLOCK
    assert first.events.seq > max(e["seq"] for e in events)


def test_the_handler_reports_a_misconfigured_worker_as_an_error_event(monkeypatch, tiny_model_dir, small_sample, tmp_path):
    from handler.handler import handler
    from shared.storage import LocalStorage
    job = _job(tiny_model_dir, small_sample, LocalStorage(tmp_path), max_steps=2)
    monkeypatch.setenv("STORAGE_BACKEND", "s3")
    [event] = handler({"id": "rp-1", "input": job.model_dump(mode="json")})
    assert event["error"]["type"] == "storage" and "STORAGE_BACKEND" in event["error"]["message"]


def test_long_calls_send_heartbeats_and_train_the_same_adapter(tiny_model_dir, small_sample, tmp_path):
    """Loading the model and the checkpoint, and scoring, run beside a heartbeat: the stream
    never goes quiet for longer than ``heartbeat_seconds``, and the weights are those of a run
    whose heartbeat never fires."""
    from shared.storage import LocalStorage

    def run(root, heartbeat_seconds):
        storage = LocalStorage(root)
        events = list(Recipe(_job(tiny_model_dir, small_sample, storage, max_steps=3), storage,
                             settings=HandlerSettings(heartbeat_seconds=heartbeat_seconds)).run())
        return events, load_file(str(root / "jobs/job1/adapter/adapter_model.safetensors"))

    events, beating = run(tmp_path / "beating", 0.005)
    quiet_events, quiet = run(tmp_path / "quiet", 3600)
    beats = [parse_event(e) for e in events if e["type"] == "heartbeat"]
    assert not any(e["type"] == "heartbeat" for e in quiet_events)
    assert {(b.stage, b.activity) for b in beats} >= {
        ("model_loading", "loading the base model"), ("evaluating", "scoring the held-out conversations")}
    stage = None
    for e in events:                                   # each heartbeat inside the stage it names
        stage = e["stage"] if e["type"] == "stage" else stage
        if e["type"] == "heartbeat":
            assert e["stage"] == stage
    assert [e["seq"] for e in events] == list(range(len(events)))
    assert beating.keys() == quiet.keys() and all(torch.equal(beating[k], quiet[k]) for k in quiet)


def test_a_heartbeat_call_returns_its_value_or_raises_its_error():
    import time

    from handler.heartbeat import beating

    def slow():
        time.sleep(0.3)
        return 42

    def broken():
        time.sleep(0.15)
        raise ValueError("the checkpoint is damaged")

    gen, beats = beating(slow, lambda s: s, every_s=0.05), []
    with pytest.raises(StopIteration) as done:
        while True:
            beats.append(next(gen))
    assert done.value.value == 42 and len(beats) >= 3 and beats == sorted(beats)
    with pytest.raises(ValueError, match="damaged"):
        list(beating(broken, lambda s: s, every_s=0.05))

    def timed_out():                     # concurrent.futures' "still running" is this type too
        time.sleep(0.15)
        raise TimeoutError("the model cache's network volume timed out")

    started, beats = time.monotonic(), []
    with pytest.raises(TimeoutError, match="network volume"):
        for b in beating(timed_out, lambda s: s, every_s=0.05):
            beats.append(b)
            assert len(beats) <= 5, "a TimeoutError of the call was taken for 'still running'"
    assert time.monotonic() - started < 1
