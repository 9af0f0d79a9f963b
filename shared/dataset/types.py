"""The dataset's types: conversations of training examples, whatever the file format.

An :class:`Example` is one training target (an assistant reply) with the exact prompt it
answers. A :class:`Sequence` is what the model is trained on: messages in order, some of
them trained. Folding (``folding.py``) turns a conversation's examples into as few
sequences as is exact.
"""
from __future__ import annotations

from dataclasses import dataclass, field

ROLES = ("system", "user", "assistant")


@dataclass(frozen=True)
class Message:
    role: str
    content: str

    def to_dict(self) -> dict:
        return {"role": self.role, "content": self.content}


@dataclass(frozen=True)
class Example:
    """One trained assistant reply and the prompt it answers (system, history, user)."""

    id: str
    conversation_id: str
    prompt: tuple[Message, ...]
    target: str
    quality_score: int | None = None

    @property
    def messages(self) -> tuple[Message, ...]:
        return self.prompt + (Message("assistant", self.target),)


@dataclass(frozen=True)
class Conversation:
    id: str
    examples: tuple[Example, ...]
    scaffolding: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Sequence:
    """Messages trained as one row; ``trained[i]`` says whether message i carries loss."""

    conversation_id: str
    messages: tuple[Message, ...]
    trained: tuple[bool, ...]
    example_ids: tuple[str, ...]

    @property
    def n_targets(self) -> int:
        return len(self.example_ids)


@dataclass
class Dataset:
    """A parsed, valid dataset."""

    format: str
    conversations: list[Conversation]
    pairs_total: int = 0
    skipped_null_targets: int = 0
    skipped_low_quality: int = 0
    warnings: list[str] = field(default_factory=list)

    @property
    def examples(self) -> list[Example]:
        return [e for c in self.conversations for e in c.examples]
