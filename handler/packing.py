"""Padding-free packing: a micro-batch's sequences laid end to end in one row, with position
ids that restart at 0 for each sequence, and attention that never crosses a sequence's
boundary, so every token sees exactly what it would see alone and the loss of each token
is the unpacked one.

What transformers 5 offers, and what is used here:

- ``sdpa`` and ``eager``: given ``position_ids`` that restart and no ``attention_mask`` (and
  no cache), ``masking_utils.find_packed_sequence_indices`` detects the packing and builds a
  block-diagonal causal mask, a dense ``tokens x tokens`` one. It is exact, but SDPA then
  computes every block of the row, across sequences too, and cannot use its causal kernel.
- ``flash_attention_2`` (and the other flash kernels, on a GPU with the package): packed
  ``position_ids`` with one row select ``flash_attn_varlen_func``; the cumulative sequence
  lengths (``cu_seq_lens_q/k``, ``max_length_q/k``) are passed here so that it need not
  infer them in every layer.

Without a flash package (the CPU, or a GPU without ``flash-attn``) the model's attention is
``PACKED_SDPA``, registered below: PyTorch's SDPA run sequence by sequence with its causal
kernel, which is the block-diagonal causal mask without computing the blocks it masks. The
sequences' bounds reach it as a keyword of the model's forward, which gradient checkpointing
passes again to the layers it recomputes. transformers still builds its dense mask once per
forward (0.3 s of one CPU core for 8,192 tokens; 256 MB on a GPU for 16,384), which this
attention does not read. Any call without packed sequences (generation with a cache,
left-padded prompts) falls through to the plain ``sdpa`` implementation, mask and all.
Measured on the embedded model, one step's two folded sequences (541 + 510 tokens), one
CPU thread, forward and backward: right-padded rows 9.3 s, the dense block-diagonal mask
10.1 s, sequence by sequence 8.6 s.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask
from transformers.utils import is_flash_attn_2_available

PACKED_SDPA = "brightrun_packed_sdpa"
FLASH = ("flash_attention_2", "flash_attention_3")


@dataclass(frozen=True)
class Packed:
    """One row: ``input_ids``, ``position_ids`` and ``trained`` are ``(1, tokens)``; a
    sequence's first token is never trained (nothing before it in its own sequence)."""
    input_ids: torch.Tensor
    position_ids: torch.Tensor
    trained: torch.Tensor
    lengths: tuple[int, ...]

    @property
    def tokens(self) -> int:
        return sum(self.lengths)

    @property
    def bounds(self) -> tuple[tuple[int, int], ...]:
        """(start, stop) of each sequence in the row."""
        out, start = [], 0
        for n in self.lengths:
            out.append((start, start + n))
            start += n
        return tuple(out)

    def predicted_per_sequence(self) -> list[int]:
        """How many loss tokens each sequence gives, in row order."""
        trained = self.trained[0].tolist()
        return [sum(trained[a + 1:b]) for a, b in self.bounds]


def pack(encoded: Sequence, device) -> Packed:
    """The encoded sequences (``handler.tokenization.Encoded``) of one micro-batch as one row.

    >>> from handler.tokenization import Encoded
    >>> p = pack([Encoded((5, 6, 7), (False, True, True), "a", ("x",)),
    ...           Encoded((8, 9), (True, True), "b", ("y",))], "cpu")
    >>> p.position_ids.tolist(), p.trained.tolist(), p.bounds
    ([[0, 1, 2, 0, 1]], [[False, True, True, False, True]], ((0, 3), (3, 5)))
    """
    ids: list[int] = []
    positions: list[int] = []
    trained: list[bool] = []
    for e in encoded:
        ids.extend(e.input_ids)
        positions.extend(range(len(e)))
        trained.append(False)
        trained.extend(e.trained[1:])
    as_row = lambda values, dtype: torch.tensor([values], dtype=dtype).to(device)  # noqa: E731
    return Packed(as_row(ids, torch.long), as_row(positions, torch.long), as_row(trained, torch.bool),
                  tuple(len(e) for e in encoded))


def model_kwargs(model, packed: Packed) -> dict:
    """What the model's forward takes besides ``input_ids`` for ``packed``: the restarting
    positions, no padding mask, no cache, and the lengths the flash kernels read."""
    kwargs = {"position_ids": packed.position_ids, "attention_mask": None, "use_cache": False}
    implementation = attention_implementation(model)
    if implementation == PACKED_SDPA:
        kwargs["sequence_bounds"] = packed.bounds
    elif implementation in FLASH:
        cu = torch.tensor([0, *[b for _, b in packed.bounds]], dtype=torch.int32,
                          device=packed.input_ids.device)
        longest = max(packed.lengths)
        kwargs.update(cu_seq_lens_q=cu, cu_seq_lens_k=cu, max_length_q=longest, max_length_k=longest)
    return kwargs


def attention_implementation(model) -> str:
    config = getattr(model, "config", None)
    return getattr(config, "_attn_implementation", None) or "sdpa"


def best_attention(device: torch.device) -> str:
    """The flash kernel where a GPU has it, else SDPA run sequence by sequence."""
    if device.type == "cuda" and is_flash_attn_2_available():
        return "flash_attention_2"
    return PACKED_SDPA


def use_packed_attention(model, device: torch.device) -> str:
    """Switch ``model`` (a transformers model, or a PEFT one around it) to the best packed
    attention for ``device``; the implementation chosen."""
    chosen = best_attention(device)
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    base.set_attn_implementation(chosen)
    return chosen


def packed_sdpa_attention(module, query, key, value, attention_mask, sequence_bounds=None, **kwargs):
    """SDPA over each sequence of a packed row (``sequence_bounds``), causal within it; plain
    SDPA, mask and all, otherwise. ``query`` is ``(1, heads, tokens, dim)``, the output
    ``(1, tokens, heads, dim)``. The bounds come as a keyword of the model's forward, so a
    layer recomputed by gradient checkpointing gets them again."""
    if sequence_bounds is None:
        return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)
    if query.shape[0] != 1 or not sequence_bounds[-1][1] == query.shape[2] == key.shape[2]:
        raise ValueError("packed attention takes one row of whole sequences, without a cache")
    kwargs["is_causal"] = True
    parts = [sdpa_attention_forward(module, query[:, :, a:b], key[:, :, a:b], value[:, :, a:b],
                                    None, **kwargs)[0] for a, b in sequence_bounds]
    return (parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)), None


AttentionInterface.register(PACKED_SDPA, packed_sdpa_attention)
AttentionMaskInterface.register(PACKED_SDPA, sdpa_mask)
