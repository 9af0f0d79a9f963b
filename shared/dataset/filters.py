"""Optional filters applied before training."""
from __future__ import annotations

from dataclasses import replace

from shared.dataset.types import Conversation, Dataset


def min_quality(dataset: Dataset, minimum: int | None) -> Dataset:
    """Drop examples whose quality score is below ``minimum`` (unscored ones are kept)."""
    if minimum is None:
        return dataset
    kept, dropped = [], 0
    for conv in dataset.conversations:
        examples = tuple(e for e in conv.examples
                         if e.quality_score is None or e.quality_score >= minimum)
        dropped += len(conv.examples) - len(examples)
        if examples:
            kept.append(Conversation(conv.id, examples, conv.scaffolding))
    return replace(dataset, conversations=kept, skipped_low_quality=dataset.skipped_low_quality + dropped)
