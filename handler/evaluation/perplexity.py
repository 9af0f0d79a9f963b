"""Held-out scoring: the base model (the adapter off) and the trained adapter on the
validation split (the training split when there is none), as loss and perplexity over every
target token, per conversation, with the improvement's 95% bootstrap interval over the
held-out conversations; and the validation loss on a capped sample, during training."""
from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field

import torch

from handler import batching
from handler.losses import packed_losses
from handler.packing import pack
from handler.tokenization import EncodedSplit
from shared.evaluation.statistics import perplexity_improvement


@dataclass
class Evaluation:
    loss: float
    tokens: int
    # conversation id -> (summed token loss, target tokens)
    per_conversation: dict[str, tuple[float, int]] = field(default_factory=dict)

    @property
    def perplexity(self) -> float:
        return math.exp(min(self.loss, 50.0))

    def to_dict(self) -> dict:
        return {"loss": round(self.loss, 6), "perplexity": round(self.perplexity, 4)}


def improvement_pct(base: Evaluation, trained: Evaluation) -> float:
    """How much lower the adapter's held-out perplexity is than the base model's, in %."""
    return round(100.0 * (base.perplexity - trained.perplexity) / base.perplexity, 2)


@torch.no_grad()
def score(model, split: EncodedSplit, device, token_budget: int,
          limit: int | None = None) -> Evaluation:
    """Mean loss over the split's target tokens (its first ``limit`` sequences), in packed
    micro-batches of ``token_budget`` tokens, and each conversation's summed loss."""
    was_training = model.training
    model.eval()
    seqs = split.sequences[:limit] if limit else split.sequences
    sums: dict[str, list] = defaultdict(lambda: [0.0, 0])
    for batch in batching.micro_batches(list(range(len(seqs))), [len(s) for s in seqs], token_budget):
        row = pack([seqs[i] for i in batch], device)
        losses = packed_losses(model, row).double()
        for i, part in zip(batch, torch.split(losses, row.predicted_per_sequence())):
            entry = sums[seqs[i].conversation_id]
            entry[0] += part.sum().item()
            entry[1] += part.numel()
    if was_training:
        model.train()
    total = sum(s for s, _ in sums.values())
    count = sum(n for _, n in sums.values())
    return Evaluation(total / max(count, 1), count, {k: (s, n) for k, (s, n) in sums.items()})


def scored_split(train: EncodedSplit, val: EncodedSplit) -> EncodedSplit:
    """The split that is scored: the held-out one, or the training split without one."""
    return val if val.sequences else train


def base_and_trained(model, train: EncodedSplit, val: EncodedSplit, device,
                     token_budget: int) -> tuple[Evaluation, Evaluation]:
    """The scored split with the adapter off, then on."""
    split = scored_split(train, val)
    with model.disable_adapter():
        base = score(model, split, device, token_budget)
    return base, score(model, split, device, token_budget)


def report(train: EncodedSplit, val: EncodedSplit, base: Evaluation, trained: Evaluation) -> dict:
    """The perplexity part: overall figures (the ``evaluation`` event's core fields), each
    conversation's perplexity under both models, and the improvement's 95% interval."""
    scored = scored_split(train, val)
    ids = sorted(base.per_conversation)
    b = [base.per_conversation[c][0] for c in ids]
    a = [trained.per_conversation[c][0] for c in ids]
    n = [base.per_conversation[c][1] for c in ids]
    stats = perplexity_improvement(b, a, n)
    return {
        "split": "validation" if val.sequences else "training",
        "conversations": len(ids), "targets": scored.targets, "tokens": base.tokens,
        "base": base.to_dict(), "trained": trained.to_dict(),
        "improvement_pct": improvement_pct(base, trained),
        "interval_pct": stats["interval_pct"],
        "per_conversation": [
            {"conversation_id": c, "tokens": t, "base": round(math.exp(min(bs / t, 50.0)), 4),
             "adapter": round(math.exp(min(as_ / t, 50.0)), 4)}
            for c, bs, as_, t in zip(ids, b, a, n)]}
