"""Statistics of a dataset: what a user checks before renting a GPU."""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from shared.dataset.folding import fold_report, to_sequences
from shared.dataset.types import Dataset, Sequence

SCAFFOLDING_KEYS = ("persona_key", "emotional_arc_key", "training_topic_key")


def describe(dataset: Dataset, count_tokens: Callable[[Sequence], int] | None = None) -> dict:
    """Counts, distributions and the folding report.

    ``count_tokens`` renders a sequence with the model's chat template and counts its
    tokens; without it, token figures are estimated at 4 characters a token.
    """
    examples = dataset.examples
    folded = to_sequences(dataset.conversations, fold=True)
    unfolded = to_sequences(dataset.conversations, fold=False)
    counter = count_tokens or _estimate_tokens
    tokens_unfolded = sum(counter(s) for s in unfolded)
    tokens_folded = sum(counter(s) for s in folded)
    report = fold_report(dataset.conversations, folded)
    quality = Counter(e.quality_score for e in examples if e.quality_score is not None)
    scaffolding = {
        key: dict(Counter(c.scaffolding.get(key) for c in dataset.conversations
                          if c.scaffolding.get(key)).most_common())
        for key in SCAFFOLDING_KEYS
    }
    return {
        "format": dataset.format,
        "conversations": len(dataset.conversations),
        "pairs": dataset.pairs_total,
        "trainable_pairs": len(examples),
        "skipped_null_targets": dataset.skipped_null_targets,
        "skipped_low_quality": dataset.skipped_low_quality,
        "tokens": {
            "counted_with": "tokenizer" if count_tokens else "estimate (4 characters a token)",
            "unfolded": tokens_unfolded,
            "folded": tokens_folded,
            "saved_pct": round(100 * (1 - tokens_folded / tokens_unfolded), 1) if tokens_unfolded else 0.0,
        },
        "folding": report.to_dict(),
        "quality_scores": {str(k): v for k, v in sorted(quality.items())},
        "quality_mean": round(sum(k * v for k, v in quality.items()) / sum(quality.values()), 2)
        if quality else None,
        "scaffolding": scaffolding,
        "warnings": list(dataset.warnings),
    }


def _estimate_tokens(seq: Sequence) -> int:
    return sum(len(m.content) + 16 for m in seq.messages) // 4
