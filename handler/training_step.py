"""One optimizer step of the recipe: the step's sequences in packed micro-batches
(``handler/packing.py``), the loss of each micro-batch summed over its target tokens and
divided by the step's target tokens (so the step's loss is the mean over all of them, however
the micro-batches fall), gradients accumulated, clipped, then the optimizer and scheduler
step. ``handler/recipe.py`` runs it for each step of the plan; ``benchmarks/gpu_throughput.py``
times it."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from handler.losses import packed_losses
from handler.packing import pack


@dataclass(frozen=True)
class StepResult:
    loss: float            # mean over the step's target tokens
    grad_norm: float       # before clipping
    real_tokens: int       # tokens of the sequences trained on
    row_tokens: int        # tokens of the rows computed (packed rows: the same, no padding)


def train_step(model, params, optimizer, scheduler, sequences, micro: list[list[int]], device,
               max_grad_norm: float) -> StepResult:
    """One step over ``micro``, lists of indices into ``sequences`` (``Encoded``)."""
    model.train()
    n_target_tokens = sum(sequences[i].target_tokens for batch in micro for i in batch)
    loss_sum, real, rows = 0.0, 0, 0
    for batch in micro:
        row = pack([sequences[i] for i in batch], device)
        losses = packed_losses(model, row)
        (losses.sum() / n_target_tokens).backward()
        loss_sum += losses.detach().sum().item()
        real += row.tokens
        rows += row.input_ids.numel()
    grad_norm = torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return StepResult(loss_sum / n_target_tokens, float(grad_norm), real, rows)
