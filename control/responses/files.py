"""A training file as the API shows it (``TrainingFile.to_dict()``)."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from control.responses.common import AnyObject, Open, Out, Timestamp


class DatasetTokens(Open):
    counted_with: str
    unfolded: int
    folded: int
    saved_pct: float


class DatasetStatistics(Open):
    """The dataset analysed once, when it was validated (``shared/dataset/stats.py``)."""

    format: str
    conversations: int
    pairs: int
    trainable_pairs: int
    tokens: DatasetTokens
    quality_scores: dict[str, int] = {}
    quality_mean: float | None = None
    warnings: list[str] = []


class TrainingFileOut(Out):
    id: str
    filename: str
    format: Literal["brightrun-lora-v4", "chat-jsonl"] | None = Field(
        description="known once validated")
    sha256: str
    size_bytes: int
    status: Literal["validating", "ready", "invalid"]
    statistics: DatasetStatistics | None = Field(description="once ready")
    problems: list[AnyObject] | None = Field(description="when invalid: every problem with its place")
    validated_at: Timestamp | None
    created_by: str
    created_at: Timestamp


class TrainingFileList(Out):
    data: list[TrainingFileOut]
