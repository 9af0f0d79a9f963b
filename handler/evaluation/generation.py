"""Answers from a model: chat prompts rendered with its template, generated in batches with
left padding and the KV cache, greedy (the same text for the same model every time).

The adapter's answers come from the PEFT model as it is, the base model's from the same
model with the adapter off (``model.disable_adapter()``): one copy of the weights in memory.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from handler.losses import left_padded


class Stopped(Exception):
    """Asked to stop between two batches (SIGTERM): the part is not finished."""


@dataclass(frozen=True)
class Answer:
    text: str
    prompt_tokens: int
    new_tokens: int


def _generation_config(model, tokenizer, max_new_tokens: int):
    from transformers import GenerationConfig
    eos = getattr(model.generation_config, "eos_token_id", None) or tokenizer.eos_token_id
    return GenerationConfig(max_new_tokens=max_new_tokens, do_sample=False, num_beams=1,
                            use_cache=True, pad_token_id=tokenizer.pad_token_id, eos_token_id=eos)


@torch.no_grad()
def generate(model, tokenizer, prompts: list[list[dict]], *, max_new_tokens: int, batch_size: int,
             device, max_prompt_tokens: int, seed: int = 0,
             should_stop: Callable[[], bool] = lambda: False) -> list[Answer]:
    """Each chat prompt's answer, in the prompts' order. Prompts longer than
    ``max_prompt_tokens`` keep their end (the latest turns). Batches hold prompts of similar
    length, so little of each batch is padding."""
    if not prompts:
        return []
    was_training = model.training
    model.eval()
    texts = [tokenizer.apply_chat_template(p, tokenize=False, add_generation_prompt=True)
             for p in prompts]
    encoded = [tokenizer(t, add_special_tokens=False)["input_ids"][-max_prompt_tokens:] for t in texts]
    order = sorted(range(len(encoded)), key=lambda i: (len(encoded[i]), i))
    config = _generation_config(model, tokenizer, max_new_tokens)
    stop_ids = set(config.eos_token_id if isinstance(config.eos_token_id, list) else [config.eos_token_id])
    answers: dict[int, Answer] = {}
    with torch.random.fork_rng():        # seeded here, and the caller's random state left as it was
        torch.manual_seed(seed)
        for start in range(0, len(order), batch_size):
            if should_stop():
                raise Stopped()
            batch = order[start:start + batch_size]
            ids, attn = left_padded([encoded[i] for i in batch], tokenizer.pad_token_id)
            width = ids.shape[1]
            out = model.generate(input_ids=ids.to(device), attention_mask=attn.to(device),
                                 generation_config=config)
            for row, i in enumerate(batch):
                new = out[row, width:].tolist()
                cut = next((k for k, t in enumerate(new) if t in stop_ids), len(new))
                # An answer cut at max_new_tokens may end inside a character: drop its half.
                text = tokenizer.decode(new[:cut], skip_special_tokens=True).rstrip("\ufffd").strip()
                answers[i] = Answer(text,
                                    len(encoded[i]), cut)
    if was_training:
        model.train()
    return [answers[i] for i in range(len(prompts))]


def both_models(model, tokenizer, prompts: list[list[dict]], **kwargs) -> tuple[list[Answer], list[Answer]]:
    """(base answers, adapter answers) to the same prompts with the same decoding."""
    with model.disable_adapter():
        base = generate(model, tokenizer, prompts, **kwargs)
    return base, generate(model, tokenizer, prompts, **kwargs)
