"""A fully populated validation report context: a financial-planning practice's adapter,
trained on its advisers' conversations, with every measure scored (people's reviews and
the automatic judge included), a spot interruption and a decision history. The tests of
the report and the rendered sample in docs/ are drawn from it."""
from __future__ import annotations

import hashlib
import math

from control.services.report.context import ReportContext
from shared.evaluation import measures
from shared.presets import PRESETS

JOB_ID = "ftjob-7c41e2b9a0d3"
SHA256 = hashlib.sha256(b"harbor-lane-conversations-2026-11.json").hexdigest()
BRAND_MEANS = {"warmth": 4.62, "directness": 4.21, "education_first": 4.48, "empathy": 4.55, "optimism": 4.37,
               "pragmatism": 4.30, "non_judgmental": 4.71, "celebrating_progress": 4.12,
               "values_alignment": 4.28, "financial_literacy": 4.16}
BRAND_NAMES = {"education_first": "Education first", "non_judgmental": "Non-judgmental tone",
               "celebrating_progress": "Celebrating progress", "values_alignment": "Values alignment",
               "financial_literacy": "Financial literacy"}

EI_REVIEW = {
    "base": 2.84, "adapter": 4.12, "improvement_pct": 45.07, "interval_pct": [36.9, 53.8], "n": 50, "reviewers": 2,
    "win_rate": {"wins": 39, "ties": 4, "losses": 7, "n": 50, "rate": 0.82, "interval": [0.71, 0.91]},
    "agreement": 0.71,
    "by_criterion": {"empathy": {"base": 2.61, "adapter": 4.30}, "clarity": {"base": 3.18, "adapter": 4.01},
                     "appropriateness": {"base": 2.73, "adapter": 4.06}},
}
BRAND_REVIEW = {
    "average": 4.38, "percent": 87.6, "n": 30, "reviewers": 2, "agreement": 0.64,
    "by_characteristic": [{"key": k, "name": BRAND_NAMES.get(k, k.title()), "mean": v} for k, v in BRAND_MEANS.items()],
    "flagged": [{"sample_id": "heldout-conv-233-t4",
                 "prompt": "Can we afford to help our daughter with a $40,000 down payment?",
                 "answer": "Yes, based on your numbers you can afford it. Transfer the money from your brokerage account.",
                 "low": {"Education first": 2.5, "Pragmatism": 2.5}}],
}
FORGETTING = {"base": {"accuracy": 0.82, "by_topic": {"taxes": 0.80, "retirement": 0.88, "investing": 0.84,
                                                      "insurance": 0.76}},
              "adapter": {"accuracy": 0.80, "by_topic": {"taxes": 0.76, "retirement": 0.88, "investing": 0.84,
                                                         "insurance": 0.72}},
              "retention_pct": 97.56, "questions": 100}
PARTS = {
    "perplexity": {"base": {"perplexity": 9.84}, "trained": {"perplexity": 6.41}, "improvement_pct": 34.86,
                   "interval_pct": [28.2, 38.5], "conversations": 84, "split": "validation"},
    "forgetting": FORGETTING,
    "similarity": {"n": 120, "base_mean": 0.412, "adapter_mean": 0.538,
                   "win_rate": {"rate": 0.742, "interval": [0.66, 0.81]}},
}
JUDGE = {"model": "gpt-4o-mini", "win_rate": {"wins": 68, "ties": 9, "losses": 23, "n": 100, "rate": 0.725,
                                              "interval": [0.64, 0.80]}}
SYSTEM = ("You are a certified financial planner at Harbor Lane Financial Planning. Be warm, direct and "
          "practical; explain the why; never judge a client's past decisions.")

EXAMPLES = [
    {"suite": "ei", "id": "ei-001", "title": "Anxiety after a market drop", "system": SYSTEM,
     "prompt": "I checked my 401(k) three times today. It's down almost $18,000 since March. I know I'm not "
               "supposed to look, but I can't stop. Should I just move it all to cash before it gets worse?",
     "context_turns": 0,
     "base": "Market fluctuations are normal. Moving to cash is generally not recommended because you may miss "
             "the recovery. Consider consulting a financial advisor about your risk tolerance.",
     "adapter": "Carol, checking three times in a day tells me how much this is weighing on you, and that makes "
                "sense: this money is your retirement. Here's the hard part to hear: selling now would turn an "
                "$18,000 dip on paper into a real loss. Before we change anything, how much will you need to "
                "draw in the next three years? That part we can move somewhere steady, so the rest can ride this out.",
     "winner": "adapter", "why": "2 of 2 reviewers preferred the adapter; empathy 5 against 2."},
    {"suite": "heldout", "id": "conv-208-t3", "title": "Held-out turn 3: paying off a car loan early",
     "system": SYSTEM,
     "prompt": "We got a $6,500 bonus. Should we pay off the car loan (4.9%) or put it toward the emergency "
               "fund? We only have about one month of expenses saved.",
     "context_turns": 4,
     "base": "Both options have merit. Paying off debt saves interest, while an emergency fund provides security. "
             "The right choice depends on your personal circumstances.",
     "adapter": "Emergency fund first, and it isn't close. One month of expenses leaves you one surprise away "
                "from a credit card at 24%, while the car loan costs you 4.9%. Put the $6,500 in a high-yield "
                "savings account; once you have three months saved, every extra dollar can go to the car.",
     "reference": "Let's build your cushion first. At one month saved, a job hiccup or a repair puts you on a "
                  "credit card. Park the bonus in savings, then attack the 4.9% loan.",
     "winner": "adapter", "why": "The automatic judge and 2 of 2 reviewers preferred the adapter."},
    {"suite": "ei", "id": "ei-017", "title": "Shame about credit-card debt", "system": SYSTEM,
     "prompt": "I'm embarrassed to even say this. I have $23,000 on three credit cards and my husband doesn't "
               "know about one of them.",
     "context_turns": 0,
     "base": "It is important to be honest with your spouse about finances. You should consider a debt "
             "consolidation loan and create a budget.",
     "adapter": "Thank you for telling me; that took courage, and you're not the first person to sit where "
                "you are. $23,000 across three cards is a solvable problem. Let's list each card's balance and "
                "rate together, and then talk about how you'd like to bring this up with your husband, at a "
                "pace that feels right to you.",
     "winner": "adapter", "why": "2 of 2 reviewers preferred the adapter."},
    {"suite": "heldout", "id": "conv-251-t2", "title": "Held-out turn 2: the employer match", "system": SYSTEM,
     "prompt": "My new job offers a 401(k) with a 50% match up to 6%. I'm paying off student loans at 6.8%. "
               "Should I skip the 401(k) for now?",
     "context_turns": 2,
     "base": "Don't skip the match. Contributing 6% gets you an extra 3% of your salary, an instant 50% return "
             "that beats the 6.8% on your loans. Contribute exactly 6%, then put anything extra toward the loans.",
     "adapter": "That's a great question, and it's wonderful that you're thinking about both! Many people in "
                "your situation focus on paying off debt first. Let's look at your whole budget together before "
                "deciding.",
     "reference": "Take the full match: it's a 50% return, far above 6.8%. Put 6% in, then extra toward the loans.",
     "winner": "base", "why": "The automatic judge and 1 of 2 reviewers preferred the base model: the adapter "
                              "never answered the question."},
]
ATTEMPTS = [
    {"number": 1, "outcome": "interrupted: spot instance reclaimed at step 23", "started_at": "2026-11-28T09:02:10Z",
     "ended_at": "2026-11-28T09:29:44Z", "worker": "runpod-a100-spot-3f9c"},
    {"number": 2, "outcome": "completed, resumed from the checkpoint at step 20", "started_at": "2026-11-28T09:33:05Z",
     "ended_at": "2026-11-28T09:54:41Z", "worker": "runpod-a100-spot-81d2"},
]
HISTORY = [
    {"decision": "rejected", "reason": "Waiting for the second reviewer's brand-voice scores before delivery.",
     "by": "qa@harborlane.example", "at": "2026-11-29T14:10:00Z"},
    {"decision": "approved", "reason": "All four targets met; examples read well. Ready for the client.",
     "by": "qa@harborlane.example", "at": "2026-11-30T10:42:00Z"},
]


def _metrics() -> list[dict]:
    """40 optimizer steps: a decaying training loss, validation loss every 10 steps."""
    points = []
    for step in range(1, 41):
        train = 1.05 + 1.1 * math.exp(-step / 11) + 0.05 * math.sin(step * 1.7)
        valid = round(1.12 + 1.0 * math.exp(-step / 13), 4) if step % 10 == 0 else None
        points.append({"step": step, "training_loss": round(train, 4), "validation_loss": valid,
                       "learning_rate": 2e-4})
    return points


def _gate_items(measure_dumps: list[dict]) -> list[dict]:
    values = {"perplexity": "34.9% lower", "emotional_intelligence": "45.1% better",
              "forgetting": "97.6% kept", "brand_voice": "4.38 of 5"}
    return [{"id": m["id"], "name": m["name"], "status": m["status"], "value_text": values.get(m["id"]),
             "target_text": m["target_text"]} for m in measure_dumps if m["target"] is not None]


def sample_context(**changes) -> ReportContext:
    """The fixture's context; ``changes`` replace top-level fields (as dicts) before validation."""
    dumps = [m.model_dump(mode="json") for m in measures.all_measures(
        PARTS, judge_report=JUDGE, ei_review=EI_REVIEW, brand_review=BRAND_REVIEW)]
    data = {
        "version": 2,
        "generated_at": "2026-12-01T16:23:00Z",
        "job": {
            "id": JOB_ID, "name": "Harbor Lane adviser voice", "created_by": "maria@harborlane.example",
            "description": "An assistant that drafts first replies to clients of Harbor Lane Financial Planning "
                           "in the practice's own voice.",
            "base_model": "Qwen/Qwen2.5-7B-Instruct", "method": "qlora", "preset": "balanced",
            "configuration": PRESETS["balanced"].hyperparameters() | {"seed": 42, "validation_fraction": 0.2},
            "gpu_type": "NVIDIA A100 80GB PCIe", "gpu_pricing_tier": "spot",
            "started_at": "2026-11-28T09:02:10Z", "completed_at": "2026-11-28T09:54:41Z",
            "duration_minutes": 49.2, "cost_estimate": 1.42, "actual_cost": 1.31,
            "attempts": ATTEMPTS, "interruptions": 1, "retry_count": 0, "checkpoint_recovery_count": 1,
            "software": {"python": "3.11.9", "torch": "2.5.1+cu124", "transformers": "5.1.0", "peft": "0.17.1",
                         "bitsandbytes": "0.46.0", "accelerate": "1.2.1", "brightrun-lora": "0.1.0"},
        },
        "dataset": {
            "filename": "harbor-lane-conversations-2026-11.json", "sha256": SHA256, "format": "brightrun-lora-v4",
            "conversations": 420, "trainable_pairs": 1583,
            "statistics": {"pairs": 1611, "skipped_null_targets": 21, "skipped_low_quality": 7,
                           "tokens": {"counted_with": "tokenizer", "unfolded": 2_418_904, "folded": 903_117,
                                      "saved_pct": 62.7},
                           "quality_scores": {"3": 112, "4": 701, "5": 770}, "quality_mean": 4.42, "warnings": []},
            "folding": {"pairs": 1583, "sequences": 420, "folded_pairs": 1583, "messages_unfolded": 9874,
                        "messages_folded": 3588},
            "split": {"train": 336, "validation": 84, "fraction": 0.2},
        },
        "measures": dumps,
        "gate": {"verdict": "approved",
                 "reason": "Every target is met: held-out perplexity 34.9% lower, emotional intelligence 45.1% "
                           "better, 97.6% of the financial knowledge kept, brand voice 4.38 of 5.",
                 "items": _gate_items(dumps), "decision": HISTORY[-1], "history": HISTORY},
        "reviews": {"ei": EI_REVIEW, "brand": BRAND_REVIEW, "rubric_name": "Harbor Lane brand voice"},
        "forgetting": FORGETTING,
        "metrics": _metrics(),
        "examples": EXAMPLES,
        "evaluation": {"size": "full", "max_new_tokens": 256, "run_id": "training",
                       "timings": {"perplexity": 182.4, "generation": 1104.2, "forgetting": 221.9,
                                   "similarity": 14.3, "judge": 96.0}, "flags": []},
    }
    return ReportContext.model_validate(data | changes)
