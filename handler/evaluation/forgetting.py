"""The forgetting check: multiple-choice financial-knowledge questions, each scored with one
forward pass by the likelihood of the option letters as the model's next token under its
chat template. No free-text parsing: the letter the model finds likeliest is its answer."""
from __future__ import annotations

from collections import defaultdict

import torch

from handler.losses import left_padded

from shared.suites import LETTERS


def letter_token_ids(tokenizer) -> dict[str, list[int]]:
    """The tokens that spell each option letter alone, bare or after a space ("A", " A")."""
    ids: dict[str, list[int]] = {}
    for letter in LETTERS:
        found = []
        for text in (letter, " " + letter):
            tokens = tokenizer.encode(text, add_special_tokens=False)
            if len(tokens) == 1 and tokens[0] not in found:
                found.append(tokens[0])
        if not found:
            raise ValueError(f"the tokenizer has no single token for the option letter {letter!r}")
        ids[letter] = found
    return ids


@torch.no_grad()
def answer(model, tokenizer, questions, *, device, batch_size: int, system_prompt: str | None = None) -> list[dict]:
    """Each question's chosen letter, whether it is right, and the letters' probabilities."""
    was_training = model.training
    model.eval()
    letters = letter_token_ids(tokenizer)
    out = []
    for start in range(0, len(questions), batch_size):
        batch = questions[start:start + batch_size]
        encoded = []
        for q in batch:
            messages = ([{"role": "system", "content": system_prompt}] if system_prompt else []) + [
                {"role": "user", "content": q.prompt()}]
            text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            encoded.append(tokenizer(text, add_special_tokens=False)["input_ids"])
        ids, attn = left_padded(encoded, tokenizer.pad_token_id)   # the last position is the answer's
        positions = (attn.cumsum(-1) - 1).clamp(min=0)
        logits = model(input_ids=ids.to(device), attention_mask=attn.to(device),
                       position_ids=positions.to(device)).logits[:, -1, :].float()
        scores = torch.stack([torch.logsumexp(logits[:, letters[L]], dim=-1) for L in LETTERS], dim=-1)
        probs = torch.softmax(scores, dim=-1).cpu()
        for q, p, n in zip(batch, probs, (len(e) for e in encoded)):
            chosen = LETTERS[int(p.argmax())]
            out.append({"id": q.id, "topic": q.topic, "answer": q.answer, "chosen": chosen,
                        "correct": chosen == q.answer, "prompt_tokens": n,
                        "probabilities": {L: round(float(v), 4) for L, v in zip(LETTERS, p)}})
    if was_training:
        model.train()
    return out


def accuracy(results: list[dict]) -> dict:
    """Overall and per-topic accuracy of one model's answers.

    >>> accuracy([{"topic": "taxes", "correct": True}, {"topic": "taxes", "correct": False}])
    {'accuracy': 0.5, 'correct': 1, 'n': 2, 'by_topic': {'taxes': 0.5}}
    """
    by_topic: dict[str, list[bool]] = defaultdict(list)
    for r in results:
        by_topic[r["topic"]].append(r["correct"])
    right = sum(r["correct"] for r in results)
    return {"accuracy": round(right / len(results), 4) if results else None, "correct": right,
            "n": len(results),
            "by_topic": {t: round(sum(v) / len(v), 4) for t, v in sorted(by_topic.items())}}


def report(base: list[dict], adapter: list[dict]) -> dict:
    """Both models' accuracy, per topic, and retention = adapter accuracy / base accuracy."""
    b, a = accuracy(base), accuracy(adapter)
    retention = (round(100.0 * a["accuracy"] / b["accuracy"], 2)
                 if b["accuracy"] else (100.0 if a["accuracy"] == b["accuracy"] else None))
    return {"base": b, "adapter": a, "retention_pct": retention, "questions": len(base),
            "answers": [{"id": x["id"], "topic": x["topic"], "answer": x["answer"],
                         "base": x["chosen"], "adapter": y["chosen"]} for x, y in zip(base, adapter)]}
