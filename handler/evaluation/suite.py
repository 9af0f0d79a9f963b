"""The evaluating stage's parts in order, each stored as it finishes (``parts/<part>.json``,
with the evaluation's fingerprint), so a worker lost mid-evaluation costs only the part it
was in: the next attempt loads the finished ones and runs the rest. When every part is done
the samples (``samples/<suite>.jsonl``) and the summary (``summary.json``, last) are written.
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict

from handler.evaluation import forgetting, generation, perplexity, prompts, similarity
from handler.training_data import read_verified
from shared import suites
from shared.dataset.prompts import parse_prompts
from shared.evaluation import measures
from shared.evaluation.report import SUITES, EvaluationSummary, Sample, write_samples
from shared.evaluation.statistics import win_rate
from shared.evaluation.targets import FORGETTING_ADVICE, FORGETTING_RETENTION_PCT
from shared.job_input import JobInput
from shared.storage import Storage
from shared.storage.layout import EvaluationLayout

ACTIVITIES = {
    "perplexity": "scoring the held-out conversations",
    "heldout": "answering the held-out turns with both models",
    "ei": "answering the emotional-intelligence scenarios with both models",
    "custom": "answering the customer's prompts with both models",
    "forgetting": "asking the financial-knowledge questions",
    "similarity": "comparing answers with the reference replies",
}


class SuiteRun:
    """One evaluation of ``model`` (a PEFT model: the adapter on, or off for the base)."""

    def __init__(self, *, job: JobInput, storage: Storage, layout: EvaluationLayout, model, tokenizer,
                 data, device, token_budget: int, should_stop: Callable[[], bool]):
        self.job, self.settings = job, job.evaluation
        self.storage, self.layout = storage, layout
        self.model, self.tokenizer, self.data, self.device = model, tokenizer, data, device
        self.token_budget = token_budget
        self.should_stop = should_stop
        self.fingerprint = job.evaluation_fingerprint()
        self.size = self.settings.size or ("full" if getattr(device, "type", "cpu") == "cuda" else "quick")
        self.results: dict[str, dict] = {}
        self.seconds: dict[str, float] = {}

    # ---------------------------------------------------------------- the plan
    def plan(self) -> list[str]:
        """The parts this evaluation runs, in order."""
        parts = ["perplexity"]
        if self.size == "perplexity":
            return parts
        if self.data.val.sequences:
            parts.append("heldout")
        parts.append("ei")
        if self.settings.prompts is not None:
            parts.append("custom")
        parts.append("forgetting")
        if self.data.val.sequences or self.settings.prompts is not None:
            parts.append("similarity")
        return parts

    def load(self, name: str) -> bool:
        """Take a finished part from storage if this evaluation stored it."""
        key = self.layout.part(name)
        if not self.storage.exists(key):
            return False
        doc = json.loads(self.storage.get_bytes(key))
        if doc.get("fingerprint") != self.fingerprint:
            return False
        self.results[name], self.seconds[name] = doc["result"], doc["seconds"]
        return True

    def run(self, name: str) -> dict:
        """Compute one part and store it."""
        started = time.monotonic()
        result = getattr(self, f"_{name}")()
        self.results[name] = result
        self.seconds[name] = round(time.monotonic() - started, 2)
        self.storage.put_bytes(self.layout.part(name), json.dumps(
            {"fingerprint": self.fingerprint, "seconds": self.seconds[name], "result": result}).encode())
        return result

    # ---------------------------------------------------------------- the parts
    def _perplexity(self) -> dict:
        base, trained = perplexity.base_and_trained(self.model, self.data.train, self.data.val,
                                                    self.device, self.token_budget)
        return perplexity.report(self.data.train, self.data.val, base, trained)

    def _answers(self, cases: list[prompts.Case]) -> dict:
        base, adapter = generation.both_models(
            self.model, self.tokenizer, [c.messages for c in cases],
            max_new_tokens=self.settings.max_new_tokens, batch_size=self.settings.batch_size,
            device=self.device, max_prompt_tokens=self.job.hyperparameters.max_seq_length,
            seed=self.job.seed, should_stop=self.should_stop)
        return {"cases": [{**asdict(c), "base": b.text, "adapter": a.text, "prompt_tokens": b.prompt_tokens,
                           "base_tokens": b.new_tokens, "adapter_tokens": a.new_tokens}
                          for c, b, a in zip(cases, base, adapter)]}

    def _heldout(self) -> dict:
        held = [c for c in self.data.dataset.conversations
                if c.id in {e.conversation_id for e in self.data.val.sequences}]
        return self._answers(prompts.heldout(held, self.size))

    def _ei(self) -> dict:
        return self._answers(prompts.emotional_intelligence(self.size))

    def _custom(self) -> dict:
        ref = self.settings.prompts
        raw = read_verified(self.storage, ref.key, ref.sha256, "evaluation.prompts")
        return self._answers(prompts.custom(parse_prompts(raw, name=ref.key), self.size))

    def _forgetting(self) -> dict:
        questions = suites.financial_knowledge().sample(self.size)
        kwargs = {"device": self.device, "batch_size": self.settings.batch_size}
        with self.model.disable_adapter():
            base = forgetting.answer(self.model, self.tokenizer, questions, **kwargs)
        adapter = forgetting.answer(self.model, self.tokenizer, questions, **kwargs)
        report = forgetting.report(base, adapter)
        report["prompt_tokens"] = sum(r["prompt_tokens"] for r in base)
        return report

    def _similarity(self) -> dict:
        out = {}
        for suite in ("heldout", "custom"):
            cases = [c for c in self.results.get(suite, {}).get("cases", []) if c["reference"]]
            refs = [c["reference"] for c in cases]
            dev = str(self.device)
            base = similarity.cosine_to_references([c["base"] for c in cases], refs, dev)
            adapter = similarity.cosine_to_references([c["adapter"] for c in cases], refs, dev)
            out[suite] = {c["id"]: [b, a] for c, b, a in zip(cases, base, adapter)}
        pairs = list(out["heldout"].values())
        outcomes = [similarity.outcome(b, a) for b, a in pairs]
        return {"by_suite": out, "n": len(pairs),
                "base_mean": round(sum(b for b, _ in pairs) / len(pairs), 4) if pairs else None,
                "adapter_mean": round(sum(a for _, a in pairs) / len(pairs), 4) if pairs else None,
                "win_rate": win_rate(outcomes.count("win"), outcomes.count("tie"), outcomes.count("loss"))}

    # ---------------------------------------------------------------- the end
    def samples(self, suite: str) -> list[Sample]:
        sims = self.results.get("similarity", {}).get("by_suite", {}).get(suite, {})
        out = []
        for c in self.results.get(suite, {}).get("cases", []):
            scores = {"base_tokens": c["base_tokens"], "adapter_tokens": c["adapter_tokens"]}
            if c["id"] in sims:
                scores["base_similarity"], scores["adapter_similarity"] = sims[c["id"]]
            out.append(Sample(suite=suite, id=c["id"], category=c["category"], prompt=c["messages"],
                              base=c["base"], adapter=c["adapter"], reference=c["reference"],
                              guidance=c["guidance"] or None, scores=scores))
        return out

    def finish(self) -> EvaluationSummary:
        """Write the samples, then the summary (last: its presence means the evaluation is done)."""
        suite_info = {}
        for suite in SUITES:
            if suite not in self.results:
                continue
            rows = self.samples(suite)
            key = self.layout.samples(suite)
            write_samples(self.storage, key, rows)
            categories: dict[str, int] = {}
            for r in rows:
                if r.category:
                    categories[r.category] = categories.get(r.category, 0) + 1
            suite_info[suite] = {"samples": len(rows), "categories": categories, "key": key}
        forgetting_part = self.results.get("forgetting")
        flags = []
        if forgetting_part and (forgetting_part["retention_pct"] or 0) < FORGETTING_RETENTION_PCT:
            flags.append({"code": "forgetting", "message": FORGETTING_ADVICE,
                          "retention_pct": forgetting_part["retention_pct"],
                          "advice": {"learning_rate": "lower", "preset": "conservative", "num_epochs": "fewer"}})
        gen = [c for s in SUITES for c in self.results.get(s, {}).get("cases", [])]
        ppl = self.results["perplexity"]
        summary = EvaluationSummary(
            fingerprint=self.fingerprint, run_id=self.settings.run_id, size=self.size,
            max_new_tokens=self.settings.max_new_tokens,
            measures=measures.all_measures(self.results),
            perplexity=ppl, forgetting=forgetting_part,
            similarity={k: v for k, v in self.results["similarity"].items() if k != "by_suite"}
            if "similarity" in self.results else None,
            suites=suite_info, flags=flags,
            data={"scored_split": ppl["split"], "held_out_conversations": ppl["conversations"],
                  "held_out_pairs": ppl["targets"], "held_out_tokens": ppl["tokens"],
                  "validation_fraction": self.job.validation.fraction, "validation_seed": self.job.validation.seed,
                  "forgetting_questions": forgetting_part["questions"] if forgetting_part else 0,
                  "parts": self.plan()},
            timings=dict(self.seconds),
            tokens={"perplexity": 2 * ppl["tokens"],
                    "generation_prompt": 2 * sum(c["prompt_tokens"] for c in gen),
                    "generated": sum(c["base_tokens"] + c["adapter_tokens"] for c in gen),
                    "forgetting_prompt": 2 * (forgetting_part or {}).get("prompt_tokens", 0)})
        body = summary.model_dump_json(indent=2).encode()
        self.storage.put_bytes(self.layout.summary, body)
        self.summary_bytes = len(body)
        return summary


def event_fields(summary: EvaluationSummary, key: str) -> dict:
    """The ``evaluation`` event (and ``summary.json``'s ``eval``): the perplexity's core
    figures, the measures, the suites' counts and the flags; the answers stay in storage."""
    ppl = summary.perplexity
    return {"split": ppl["split"], "conversations": ppl["conversations"], "targets": ppl["targets"],
            "tokens": ppl["tokens"], "base": ppl["base"], "trained": ppl["trained"],
            "improvement_pct": ppl["improvement_pct"], "key": key, "run_id": summary.run_id,
            "measures": [m.model_dump(mode="json", exclude_none=True) for m in summary.measures],
            "suites": {k: {"samples": v["samples"], "categories": v["categories"]} for k, v in summary.suites.items()},
            "flags": summary.flags}

