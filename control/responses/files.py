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


class PromptStatistics(Open):
    """A prompts file (purpose evaluation) analysed once (``shared/dataset/prompts.py``)."""

    format: Literal["prompts-jsonl"]
    prompts: int
    with_reference: int = Field(description="prompts that carry the reply they expect")
    multi_turn: int = Field(description="prompts of more than one message (a system message, earlier turns)")
    categories: dict[str, int] = {}
    longest_prompt_chars: int


class TrainingFileOut(Out):
    id: str
    filename: str
    purpose: Literal["fine-tune", "evaluation"] = Field(
        description="fine-tune: a dataset to train on; evaluation: prompts to evaluate a job on")
    format: Literal["brightrun-lora-v4", "chat-jsonl", "prompts-jsonl"] | None = Field(
        description="known once validated")
    sha256: str
    size_bytes: int
    status: Literal["validating", "ready", "invalid"]
    statistics: DatasetStatistics | PromptStatistics | None = Field(
        description="once ready: a dataset's, or a prompts file's")
    problems: list[AnyObject] | None = Field(description="when invalid: every problem with its place")
    validated_at: Timestamp | None
    created_by: str
    created_at: Timestamp


class TrainingFileList(Out):
    data: list[TrainingFileOut]
