"""The loss: encoded sequences collated into padded tensors, and the cross-entropy of each
trained token, with logits computed only where loss is taken. Training and held-out
scoring both use it; the evaluation's prompts are left-padded (``left_padded``)."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def token_losses(model, input_ids, attention_mask, trained_mask):
    """Cross-entropy of each trained token, computing logits only where loss is taken."""
    lm = model.get_base_model() if hasattr(model, "get_base_model") else model
    predict = trained_mask[:, 1:]
    targets = input_ids[:, 1:][predict]
    backbone = getattr(lm, lm.base_model_prefix, None)
    plain_head = not any(getattr(lm.config, k, None) for k in ("final_logit_softcapping", "logit_scale"))
    if backbone is not None and plain_head:
        hidden = backbone(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        logits = lm.get_output_embeddings()(hidden[:, :-1][predict])
    else:
        logits = lm(input_ids=input_ids, attention_mask=attention_mask).logits[:, :-1][predict]
    return F.cross_entropy(logits.float(), targets, reduction="none")


def collate(encoded, pad_id: int, device):
    """Input ids, attention mask and trained-token mask of a micro-batch, right-padded."""
    width = max(len(e) for e in encoded)
    ids = torch.full((len(encoded), width), pad_id, dtype=torch.long)
    attn = torch.zeros((len(encoded), width), dtype=torch.long)
    mask = torch.zeros((len(encoded), width), dtype=torch.bool)
    for row, e in enumerate(encoded):
        n = len(e)
        ids[row, :n] = torch.tensor(e.input_ids)
        attn[row, :n] = 1
        mask[row, :n] = torch.tensor(e.trained)
    return ids.to(device), attn.to(device), mask.to(device)


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
