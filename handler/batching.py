"""Optimizer steps and micro-batches.

A preset's ``batch_size x gradient_accumulation_steps`` means training pairs (targets) per
optimizer step, folded or not: each epoch's shuffled sequences are grouped into steps of
that many targets, so folding changes the cost, not the optimisation. The loss of a step
is the mean over all its target tokens (as with a token-normalised pair-expanded batch).

Within a step, sequences are grouped into micro-batches of at most ``batch_size x
max_seq_length`` real tokens, each packed into one row without padding
(``handler/packing.py``).
"""
from __future__ import annotations

import random


def plan_epoch(n_targets: list[int], targets_per_step: int, seed: int, epoch: int) -> list[list[int]]:
    """Sequence indices for each optimizer step of one epoch; deterministic in (seed, epoch).

    >>> plan_epoch([1, 1, 1, 1, 1], 2, seed=0, epoch=0)
    [[2, 3], [1, 0], [4]]
    >>> [sum([3, 1, 2][i] for i in s) >= 2 for s in plan_epoch([3, 1, 2], 2, 0, 0)]
    [True, True]
    """
    order = list(range(len(n_targets)))
    random.Random(f"{seed}:{epoch}").shuffle(order)
    steps, current, count = [], [], 0
    for i in order:
        current.append(i)
        count += n_targets[i]
        if count >= targets_per_step:
            steps.append(current)
            current, count = [], 0
    if current:
        steps.append(current)
    return steps


def plan(n_targets: list[int], targets_per_step: int, seed: int,
         num_epochs: int) -> list[tuple[int, list[int]]]:
    """Every optimizer step of the run as (epoch, sequence indices)."""
    return [(epoch, s) for epoch in range(num_epochs)
            for s in plan_epoch(n_targets, targets_per_step, seed, epoch)]


def epoch_progress(steps: list[tuple[int, list[int]]]) -> list[float]:
    """Epochs completed after each step of a plan, as a fraction.

    >>> epoch_progress([(0, [0]), (0, [1]), (1, [1]), (1, [0])])
    [0.5, 1.0, 1.5, 2.0]
    """
    per_epoch: dict[int, int] = {}
    for epoch, _ in steps:
        per_epoch[epoch] = per_epoch.get(epoch, 0) + 1
    seen: dict[int, int] = {}
    out = []
    for epoch, _ in steps:
        seen[epoch] = seen.get(epoch, 0) + 1
        out.append(round(epoch + seen[epoch] / per_epoch[epoch], 4))
    return out


def token_budget(hp) -> int:
    """Real tokens in one micro-batch of a job of hyperparameters ``hp``: ``batch_size``
    sequences of the longest length, ``batch_size x max_seq_length``."""
    return hp.batch_size * hp.max_seq_length


def micro_batches(indices: list[int], lengths: list[int], token_budget: int) -> list[list[int]]:
    """Group a step's sequences into micro-batches of at most ``token_budget`` real tokens
    each (a micro-batch is one packed row, so it has no padding): first fit, longest first,
    so few micro-batches; a sequence longer than the budget gets one of its own. Each
    micro-batch lists its sequences longest first.

    >>> micro_batches([0, 1, 2, 3], [10, 50, 12, 48], token_budget=100)
    [[1, 3], [2, 0]]
    >>> micro_batches([0, 1, 2, 3, 4], [60, 30, 30, 40, 150], token_budget=100)
    [[4], [0, 3], [1, 2]]
    """
    batches: list[list[int]] = []
    room: list[int] = []
    for i in sorted(indices, key=lambda i: (-lengths[i], i)):
        for b, left in enumerate(room):
            if lengths[i] <= left:
                batches[b].append(i)
                room[b] -= lengths[i]
                break
        else:
            batches.append([i])
            room.append(token_budget - lengths[i])
    return batches
