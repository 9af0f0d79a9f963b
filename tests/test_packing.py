"""Padding-free packing: a micro-batch's sequences in one row give, token by token, the loss
(and the gradients) each sequence gives alone, with folding on, for every attention
implementation and with gradient checkpointing; micro-batches hold a budget of real tokens."""
from __future__ import annotations

import random
from types import SimpleNamespace

import pytest
import torch

from handler import batching, packing
from handler.losses import packed_losses, token_losses


@pytest.fixture(scope="module")
def folded(tokenizer, sample_text, tmp_path_factory):
    """The sample's first conversations, folded (several targets a sequence)."""
    from handler.tokenization import encode_conversations
    from shared.dataset import load_dataset
    from shared.dataset.folding import fold_conversation
    path = tmp_path_factory.mktemp("packing") / "sample.json"
    path.write_text(sample_text)
    convs = load_dataset(path).conversations[:4]
    split = encode_conversations(tokenizer, convs, fold_conversation, 4096)
    assert split.unfolded_conversations == [] and any(e.n_targets > 1 for e in split.sequences)
    return split.sequences


@pytest.fixture(scope="module")
def model(tiny_model_dir):
    """The tiny Llama with LoRA whose B matrices are not zero, so the adapter acts."""
    from transformers import AutoModelForCausalLM
    from handler.base_models import attach_lora
    from shared.job_input import Hyperparameters
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    lora = attach_lora(base, Hyperparameters.for_preset("balanced", {"lora_dropout": 0.0}), seed=3)
    torch.manual_seed(3)
    with torch.no_grad():
        for name, p in lora.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05)
    return lora.train()


def alone(model, sequences):
    """Each sequence on its own (one row, no padding, no packing): losses in order."""
    parts = []
    for e in sequences:
        ids = torch.tensor([e.input_ids])
        parts.append(token_losses(model, ids, torch.ones_like(ids), torch.tensor([e.trained])))
    return torch.cat(parts)


def assert_close_to_scale(got, want, name):
    """Equal to fp32 rounding: within 1e-5 of the tensor's largest entry."""
    scale = want.abs().max().item()
    assert scale > 0, name
    assert (got - want).abs().max().item() <= 1e-5 * scale, (name, (got - want).abs().max().item(), scale)


def lora_grads(model):
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("attention", [packing.PACKED_SDPA, "sdpa", "eager"])
def test_packed_losses_and_gradients_equal_the_unpacked_ones_token_by_token(model, folded, attention):
    model.get_base_model().set_attn_implementation(attention)
    try:
        row = packing.pack(folded, "cpu")
        assert row.input_ids.shape == (1, sum(len(e) for e in folded))  # one row, no padding
        # Sequence by sequence for ours; transformers' dense block-diagonal mask for the others.
        kwargs = packing.model_kwargs(model, row)
        assert ("sequence_bounds" in kwargs) == (attention == packing.PACKED_SDPA)
        model.zero_grad()
        packed = packed_losses(model, row)
        packed.sum().backward()
        packed_grads = lora_grads(model)
        model.zero_grad()
        reference = alone(model, folded)
        reference.sum().backward()
        reference_grads = lora_grads(model)
    finally:
        model.get_base_model().set_attn_implementation(packing.PACKED_SDPA)
    assert packed.shape == reference.shape == (sum(sum(e.trained[1:]) for e in folded),)
    torch.testing.assert_close(packed, reference, rtol=1e-5, atol=1e-5)
    assert packed_grads.keys() == reference_grads.keys() and len(packed_grads) == 2 * 2 * 7
    for name, grad in packed_grads.items():
        assert_close_to_scale(grad, reference_grads[name], name)


def test_without_the_sequence_bounds_the_later_sequences_would_see_the_earlier_ones(model, folded):
    """What the equality above rules out: one causal pass over the row mixes sequences."""
    row = packing.pack(folded, "cpu")
    with torch.no_grad():
        mixed = token_losses(model, row.input_ids, None, row.trained, position_ids=row.position_ids,
                             sequence_bounds=((0, row.tokens),), use_cache=False)
        reference = alone(model, folded)
    first = sum(folded[0].trained[1:])
    torch.testing.assert_close(mixed[:first], reference[:first], rtol=1e-5, atol=1e-5)
    assert (mixed[first:] - reference[first:]).abs().max() > 1e-3


def test_gradient_checkpointing_recomputes_the_packed_attention(tiny_model_dir, folded):
    """Checkpointed layers run again in the backward pass, and must get the bounds again
    (the GPU path: 4-bit QLoRA trains with gradient checkpointing)."""
    from transformers import AutoModelForCausalLM
    from handler.base_models import attach_lora
    from shared.job_input import Hyperparameters
    hp = Hyperparameters.for_preset("balanced", {"lora_dropout": 0.0})
    grads = []
    for checkpointing in (False, True):
        base = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
        if checkpointing:
            base.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
            base.enable_input_require_grads()
        lora = attach_lora(base, hp, seed=5).train()
        with torch.no_grad():
            for name, p in lora.named_parameters():
                if "lora_B" in name:
                    p.fill_(0.01)
        assert packing.use_packed_attention(lora, torch.device("cpu")) == packing.PACKED_SDPA
        packed_losses(lora, packing.pack(folded, "cpu")).sum().backward()
        grads.append(lora_grads(lora))
    assert grads[0].keys() == grads[1].keys()
    for name in grads[0]:
        assert_close_to_scale(grads[1][name], grads[0][name], name)


def test_the_flash_kernels_get_the_cumulative_sequence_lengths(folded):
    row = packing.pack(folded[:3], "cpu")
    flash = SimpleNamespace(config=SimpleNamespace(_attn_implementation="flash_attention_2"))
    kwargs = packing.model_kwargs(flash, row)
    ends = list(torch.tensor([len(e) for e in folded[:3]]).cumsum(0))
    assert kwargs["cu_seq_lens_q"].tolist() == kwargs["cu_seq_lens_k"].tolist() == [0, *ends]
    assert kwargs["cu_seq_lens_q"].dtype == torch.int32
    assert kwargs["max_length_q"] == kwargs["max_length_k"] == max(len(e) for e in folded[:3])
    assert kwargs["attention_mask"] is None and kwargs["use_cache"] is False
    assert row.position_ids[0].tolist() == [p for e in folded[:3] for p in range(len(e))]
    assert "sequence_bounds" not in kwargs


def test_micro_batches_hold_at_most_the_token_budget_of_real_tokens():
    rng = random.Random(0)
    for _ in range(200):
        lengths = [rng.randint(1, 400) for _ in range(rng.randint(1, 30))]
        indices = rng.sample(range(len(lengths)), rng.randint(1, len(lengths)))
        budget = rng.randint(200, 2000)
        batches = batching.micro_batches(indices, lengths, budget)
        assert sorted(i for b in batches for i in b) == sorted(indices)
        for b in batches:
            assert sum(lengths[i] for i in b) <= budget or len(b) == 1
        # First fit: no two micro-batches could have been one.
        sizes = sorted(sum(lengths[i] for i in b) for b in batches)
        assert len(sizes) < 2 or sizes[0] + sizes[1] > budget
    # Rows x longest would be 3 x 90 = 270 padded tokens; the real tokens are 90 + 2 x 10.
    assert batching.micro_batches([0, 1, 2], [90, 10, 10], token_budget=110) == [[0, 1, 2]]


def test_qlora_gradients_stay_whole_after_a_validation_pass_on_the_cpu(tiny_model_dir, folded):
    """bitsandbytes would repack 4-bit layers for its CPU inference kernel (no backward) on
    the first eval-mode pass: the training steps after a validation loss must still get the
    gradients through the frozen base."""
    from handler.base_models import attach_lora, load_model
    from shared.job_input import Hyperparameters
    model = attach_lora(load_model(tiny_model_dir, "tiny", "qlora"),
                        Hyperparameters.for_preset("balanced", {"lora_dropout": 0.0}), seed=5)
    packing.use_packed_attention(model, torch.device("cpu"))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.fill_(0.01)
    row = packing.pack(folded[:2], "cpu")

    def gradients():
        model.train()
        model.zero_grad()
        packed_losses(model, row).sum().backward()
        return lora_grads(model)

    before = gradients()
    model.eval()
    with torch.no_grad():
        packed_losses(model, row)
    after = gradients()
    for name in before:
        assert_close_to_scale(after[name], before[name], name)
