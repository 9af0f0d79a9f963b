"""The evaluating stage on a tiny random Llama (built from a config) and the embedded model's
tokenizer: both models answer every suite, the same seed gives the same text, the forgetting
scorer finds a known model's answers, the validation loss fills the curve, a re-evaluation
evaluates the finished adapter again, and the customer's prompts are answered."""
from __future__ import annotations

import hashlib
import json

import pytest
import torch

from handler.evaluation import forgetting, generation
from handler.recipe import Recipe
from shared import suites
from shared.evaluation.report import EvaluationSummary, Sample
from shared.job_input import Hyperparameters, JobInput
from shared.storage import LocalStorage
from shared.storage.layout import JobLayout

pytestmark = pytest.mark.slow

PROMPTS = (b'{"prompt": "How much should I keep in an emergency fund?", "reference": "Three to six months of expenses.", "id": "fund"}\n'
           b'{"messages": [{"role": "user", "content": "I just paid off my card!"}], "id": "card", "category": "celebrating"}\n')


def _job(base_model, data, storage, kind="train", evaluation=None, **overrides) -> JobInput:
    sha = hashlib.sha256(data).hexdigest()
    storage.put_bytes(f"datasets/{sha}.json", data)
    return JobInput.parse({
        "job_id": "job1", "kind": kind, "dataset": {"key": f"datasets/{sha}.json", "sha256": sha},
        "base_model": base_model,
        "hyperparameters": Hyperparameters.for_preset("balanced", {
            "batch_size": 1, "gradient_accumulation_steps": 2, "learning_rate": 2e-2, "num_epochs": 2,
            "lora_dropout": 0.0, **overrides}).model_dump(mode="json"),
        "checkpoint": {"every_steps": 100, "prefix": "jobs/job1"},
        "evaluation": {"max_new_tokens": 24, "every_steps": 3, **(evaluation or {})}})


@pytest.fixture(scope="module")
def evaluated(tiny_model_dir, small_sample, tmp_path_factory):
    """One training run with its evaluation (quick on a CPU), the customer's prompts included."""
    storage = LocalStorage(tmp_path_factory.mktemp("store"))
    sha = hashlib.sha256(PROMPTS).hexdigest()
    storage.put_bytes("prompts/p.jsonl", PROMPTS)
    job = _job(tiny_model_dir, small_sample, storage,
               evaluation={"prompts": {"key": "prompts/p.jsonl", "sha256": sha}})
    recipe = Recipe(job, storage)
    events = list(recipe.run())
    return recipe, events, storage, job


def _samples(storage, layout, suite) -> list[Sample]:
    return [Sample.model_validate_json(line) for line in
            storage.get_bytes(layout.samples(suite)).decode().splitlines()]


def test_after_training_base_and_adapter_answer_every_suite_differently(evaluated):
    recipe, events, storage, job = evaluated
    layout = JobLayout("jobs/job1").evaluation
    summary = EvaluationSummary.model_validate_json(storage.get_bytes(layout.summary))
    assert summary.size == "quick"
    held_pairs = summary.data["held_out_pairs"]                 # 2 held-out conversations, 4 pairs
    assert {k: v["samples"] for k, v in summary.suites.items()} == {"heldout": min(6, held_pairs), "ei": 10, "custom": 2}
    for suite in ("heldout", "ei", "custom"):
        rows = _samples(storage, layout, suite)
        assert all(r.base and r.adapter for r in rows)
        assert sum(r.base != r.adapter for r in rows) >= len(rows) // 2, suite
    heldout = _samples(storage, layout, "heldout")
    assert all(r.reference and r.prompt[-1]["role"] == "user" for r in heldout)
    assert all("base_similarity" in r.scores and "adapter_similarity" in r.scores for r in heldout)
    ei = _samples(storage, layout, "ei")
    assert {r.category for r in ei} == set(suites.CATEGORIES) and all(r.guidance for r in ei)
    custom = {r.id: r for r in _samples(storage, layout, "custom")}
    assert custom["fund"].reference == "Three to six months of expenses." and custom["card"].category == "celebrating"


def test_the_same_seed_gives_the_same_answers(evaluated):
    recipe, events, storage, job = evaluated
    layout = JobLayout("jobs/job1").evaluation
    rows = _samples(storage, layout, "ei")[:4]
    kwargs = dict(max_new_tokens=24, batch_size=8, device=recipe.device, max_prompt_tokens=2048, seed=job.seed)
    base, adapter = generation.both_models(recipe.model, recipe.tokenizer, [r.prompt for r in rows], **kwargs)
    assert [a.text for a in base] == [r.base for r in rows]
    assert [a.text for a in adapter] == [r.adapter for r in rows]


def test_the_evaluation_event_carries_the_measures_not_the_answers(evaluated):
    recipe, events, storage, job = evaluated
    event = next(e for e in events if e["type"] == "evaluation")
    assert len(json.dumps(event)) < 20_000
    by_id = {m["id"]: m for m in event["measures"]}
    assert set(by_id) == {"perplexity", "emotional_intelligence", "forgetting", "brand_voice", "reference_similarity"}
    assert by_id["emotional_intelligence"]["status"] == by_id["brand_voice"]["status"] == "waiting_for_review"
    ppl = by_id["perplexity"]
    low, high = ppl["interval"]
    assert low <= ppl["improvement"] <= high
    assert by_id["forgetting"]["n"] == 20
    assert events[-1]["summary"]["eval"]["measures"] == event["measures"]


def test_the_validation_loss_is_measured_every_few_steps_and_at_the_end(evaluated):
    recipe, events, storage, job = evaluated
    metrics = [e for e in events if e["type"] == "metrics"]
    measured = [m["step"] for m in metrics if "val_loss" in m]
    assert measured == sorted({s for s in range(3, recipe.total_steps + 1, 3)} | {recipe.total_steps})
    last = next(m for m in reversed(metrics) if "val_loss" in m)
    assert last["val_perplexity"] == pytest.approx(torch.exp(torch.tensor(last["val_loss"])).item(), rel=1e-3)


class _KnownModel(torch.nn.Module):
    """A "model" whose answers are known: it puts its logits on the letter ``pick(question)``."""

    def __init__(self, tokenizer, questions, pick):
        super().__init__()
        self.tokenizer, self.pick = tokenizer, pick
        self.by_text = {q.question: q for q in questions}
        self.letters = forgetting.letter_token_ids(tokenizer)

    def forward(self, input_ids, attention_mask, position_ids):
        logits = torch.zeros(input_ids.shape[0], input_ids.shape[1], len(self.tokenizer))
        for row, ids in enumerate(input_ids):
            text = self.tokenizer.decode(ids[attention_mask[row].bool()])
            question = next(q for t, q in self.by_text.items() if t in text)
            logits[row, -1, self.letters[self.pick(question)][0]] = 10.0
        return type("Out", (), {"logits": logits})()


def test_the_forgetting_scorer_reads_a_known_models_answers(tokenizer):
    questions = suites.financial_knowledge().sample("full")
    oracle = forgetting.answer(_KnownModel(tokenizer, questions, lambda q: q.answer), tokenizer, questions,
                               device="cpu", batch_size=16)
    always_c = forgetting.answer(_KnownModel(tokenizer, questions, lambda q: "C"), tokenizer, questions,
                                 device="cpu", batch_size=16)
    assert forgetting.accuracy(oracle)["accuracy"] == 1.0
    c = forgetting.accuracy(always_c)
    assert c["accuracy"] == 0.25 and set(c["by_topic"].values()) == {0.25}    # answers are balanced
    report = forgetting.report(oracle, always_c)
    assert report["retention_pct"] == 25.0 and report["questions"] == 100


def test_a_re_evaluation_evaluates_the_finished_adapter_again_under_its_own_run(evaluated, tiny_model_dir, small_sample):
    recipe, events, storage, job = evaluated
    again = JobInput.parse({**job.model_dump(mode="json"), "kind": "evaluate",
                            "evaluation": {"size": "full", "max_new_tokens": 4, "run_id": "ev_1"}})
    out = list(Recipe(again, storage).run())
    assert [e["stage"] for e in out if e["type"] == "stage"] == ["preprocessing", "model_loading", "evaluating"]
    assert not any(e["type"] == "metrics" for e in out)
    layout = JobLayout("jobs/job1").re_evaluation("ev_1").evaluation
    summary = EvaluationSummary.model_validate_json(storage.get_bytes(layout.summary))
    assert summary.run_id == "ev_1" and summary.size == "full"
    assert summary.suites["ei"]["samples"] == 50 and summary.forgetting["questions"] == 100
    # the same adapter: the same held-out perplexity as the training run's evaluation
    first = next(e for e in events if e["type"] == "evaluation")
    assert out[-1]["summary"]["eval"]["trained"] == first["trained"]
    # asked again, the finished re-evaluation answers at once
    repeat = list(Recipe(again, storage).run())
    assert [e["type"] for e in repeat] == ["completed"]


def test_an_evaluate_job_without_an_adapter_says_so(tiny_model_dir, small_sample, tmp_path):
    storage = LocalStorage(tmp_path)
    job = _job(tiny_model_dir, small_sample, storage, kind="evaluate", evaluation={"run_id": "ev_9"})
    with pytest.raises(Exception, match="no trained adapter to evaluate"):
        list(Recipe(job, storage).run())
