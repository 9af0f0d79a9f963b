"""Exact conversation folding (see dataset-format.md, "Prefix expansion").

Pair k of a conversation usually repeats pairs 1..k-1 as its history. When an earlier
sequence's messages are exactly a prefix of a later pair's prompt, the later pair's prompt
remainder and target are appended to that sequence: for a causal model each target token
then sees exactly the prefix it would see alone, so the loss terms are unchanged, and the
tokens processed drop several-fold. Anything that is not an exact prefix stays its own
sequence.
"""
from __future__ import annotations

from dataclasses import dataclass

from shared.dataset.types import Conversation, Example, Message, Sequence


def single(example: Example) -> Sequence:
    """The unfolded form of one example: its prompt untrained, its target trained."""
    n = len(example.prompt)
    return Sequence(example.conversation_id, example.messages, (False,) * n + (True,),
                    (example.id,))


def fold_conversation(conversation: Conversation) -> list[Sequence]:
    """Fold a conversation's examples into as few sequences as is exact.

    >>> from shared.dataset.types import Conversation, Example, Message
    >>> s, u1, a1, u2 = (Message("system", "S"), Message("user", "u1"),
    ...                  Message("assistant", "a1"), Message("user", "u2"))
    >>> e1 = Example("p1", "c", (s, u1), "a1")
    >>> e2 = Example("p2", "c", (s, u1, a1, u2), "a2")
    >>> [seq.example_ids for seq in fold_conversation(Conversation("c", (e1, e2)))]
    [('p1', 'p2')]
    >>> e3 = Example("p3", "c", (Message("system", "other"), u1), "a1")
    >>> [seq.example_ids for seq in fold_conversation(Conversation("c", (e1, e3)))]
    [('p1',), ('p3',)]
    """
    open_seqs: list[list] = []  # [messages tuple, trained tuple, ids tuple]
    # Shorter prompts first: a pair can only extend sequences that end before it starts.
    for example in sorted(conversation.examples, key=lambda e: len(e.prompt)):
        for seq in open_seqs:
            messages = seq[0]
            if len(example.prompt) >= len(messages) and example.prompt[:len(messages)] == messages:
                extra = example.prompt[len(messages):]
                seq[0] = messages + extra + (Message("assistant", example.target),)
                seq[1] = seq[1] + (False,) * len(extra) + (True,)
                seq[2] = seq[2] + (example.id,)
                break
        else:
            one = single(example)
            open_seqs.append([one.messages, one.trained, one.example_ids])
    return [Sequence(conversation.id, m, t, ids) for m, t, ids in open_seqs]


def to_sequences(conversations: list[Conversation], *, fold: bool = True) -> list[Sequence]:
    if fold:
        return [s for c in conversations for s in fold_conversation(c)]
    return [single(e) for c in conversations for e in c.examples]


@dataclass(frozen=True)
class FoldReport:
    pairs: int
    sequences: int
    folded_pairs: int          # pairs that share a sequence with at least one other
    messages_unfolded: int
    messages_folded: int

    def to_dict(self) -> dict:
        return self.__dict__.copy()


def fold_report(conversations: list[Conversation], sequences: list[Sequence]) -> FoldReport:
    pairs = sum(len(c.examples) for c in conversations)
    return FoldReport(
        pairs=pairs,
        sequences=len(sequences),
        folded_pairs=sum(s.n_targets for s in sequences if s.n_targets > 1),
        messages_unfolded=sum(len(e.messages) for c in conversations for e in c.examples),
        messages_folded=sum(len(s.messages) for s in sequences),
    )
