"""Held-out scoring: the base model (the adapter off) and the trained adapter on the
validation split (the training split when there is none), as loss and perplexity over
every target token, and how much the adapter improved on the base."""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from handler import batching
from handler.losses import collate, token_losses
from handler.tokenization import EncodedSplit


@dataclass
class Evaluation:
    loss: float
    tokens: int

    @property
    def perplexity(self) -> float:
        return math.exp(min(self.loss, 50.0))

    def to_dict(self) -> dict:
        return {"loss": round(self.loss, 6), "perplexity": round(self.perplexity, 4)}


def improvement_pct(base: Evaluation, trained: Evaluation) -> float:
    """How much lower the adapter's held-out perplexity is than the base model's, in %."""
    return round(100.0 * (base.perplexity - trained.perplexity) / base.perplexity, 2)


@torch.no_grad()
def score(model, split: EncodedSplit, pad_id: int, device, token_budget: int) -> Evaluation:
    """Mean loss over the split's target tokens, in micro-batches of ``token_budget``."""
    model.eval()
    seqs = split.sequences
    total, count = 0.0, 0
    for batch in batching.micro_batches(list(range(len(seqs))), [len(s) for s in seqs], token_budget):
        ids, attn, mask = collate([seqs[i] for i in batch], pad_id, device)
        losses = token_losses(model, ids, attn, mask)
        total += losses.double().sum().item()
        count += losses.numel()
    return Evaluation(total / max(count, 1), count)


def _scored(train: EncodedSplit, val: EncodedSplit) -> EncodedSplit:
    """The split that is scored: the held-out one, or the training split without one."""
    return val if val.sequences else train


def base_and_trained(model, train: EncodedSplit, val: EncodedSplit, pad_id: int, device,
                     token_budget: int) -> tuple[Evaluation, Evaluation]:
    """The scored split with the adapter off, then on."""
    split = _scored(train, val)
    with model.disable_adapter():
        base = score(model, split, pad_id, device, token_budget)
    return base, score(model, split, pad_id, device, token_budget)


def report(train: EncodedSplit, val: EncodedSplit, base: Evaluation, trained: Evaluation) -> dict:
    """The ``evaluation`` event's fields, kept in ``summary.json`` as ``eval``."""
    scored = _scored(train, val)
    return {
        "split": "validation" if val.sequences else "training",
        "conversations": len({e.conversation_id for e in scored.sequences}),
        "targets": scored.targets, "tokens": base.tokens,
        "base": base.to_dict(), "trained": trained.to_dict(),
        "improvement_pct": improvement_pct(base, trained)}
