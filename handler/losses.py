"""The loss: the cross-entropy of each trained token, with logits computed only where loss
is taken, on a packed row of sequences (``handler/packing.py``) or on right-padded rows.
Training and held-out scoring both pack; the evaluation's prompts are left-padded
(``left_padded``)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from handler.packing import Packed, model_kwargs


def token_losses(model, input_ids, attention_mask, trained_mask, **forward_kwargs):
    """Cross-entropy of each trained token, computing logits only where loss is taken.
    ``forward_kwargs`` go to the model's forward (a packed row's positions and bounds)."""
    lm = model.get_base_model() if hasattr(model, "get_base_model") else model
    predict = trained_mask[:, 1:]
    targets = input_ids[:, 1:][predict]
    backbone = getattr(lm, lm.base_model_prefix, None)
    plain_head = not any(getattr(lm.config, k, None) for k in ("final_logit_softcapping", "logit_scale"))
    if backbone is not None and plain_head:
        hidden = backbone(input_ids=input_ids, attention_mask=attention_mask, **forward_kwargs).last_hidden_state
        logits = lm.get_output_embeddings()(hidden[:, :-1][predict])
    else:
        logits = lm(input_ids=input_ids, attention_mask=attention_mask, **forward_kwargs).logits[:, :-1][predict]
    return F.cross_entropy(logits.float(), targets, reduction="none")


def packed_losses(model, packed: Packed):
    """Cross-entropy of each trained token of a packed row, in row order: per token what
    each sequence alone gives."""
    kwargs = model_kwargs(model, packed)
    return token_losses(model, packed.input_ids, kwargs.pop("attention_mask"), packed.trained, **kwargs)


def left_padded(encoded: list[list[int]], pad_id: int):
    """Token ids and attention mask of prompts, left-padded: each one's last token is the
    last position, where generation and next-token scoring read from."""
    width = max(len(e) for e in encoded)
    ids = torch.full((len(encoded), width), pad_id, dtype=torch.long)
    attn = torch.zeros((len(encoded), width), dtype=torch.long)
    for row, e in enumerate(encoded):
        ids[row, width - len(e):] = torch.tensor(e)
        attn[row, width - len(e):] = 1
    return ids, attn
