"""Deterministic train/validation split by conversation, never by pair (no leakage)."""
from __future__ import annotations

import hashlib

from shared.dataset.types import Conversation
from shared.errors import ConfigError, Problem


def _position(seed: int, conversation_id: str) -> float:
    """Where a conversation falls in [0, 1), from a seeded hash of its id alone."""
    digest = hashlib.sha256(f"{seed}:{conversation_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_conversations(conversations: list[Conversation], fraction: float = 0.2,
                        seed: int = 42) -> tuple[list[Conversation], list[Conversation]]:
    """Hold out about ``fraction`` of the conversations, each chosen by a seeded hash of its id.

    A conversation is held out when its hash position is below ``fraction``, a decision that
    depends on nothing but the seed and its own id: the same file gives the same split on
    every machine, and adding conversations to a file never moves an existing one between
    training and validation (unless a tiny dataset had to borrow one: both parts always
    keep at least one conversation). Both parts keep the file's order.

    >>> from shared.dataset.types import Conversation
    >>> convs = [Conversation(f"c{i}", ()) for i in range(100)]
    >>> train, val = split_conversations(convs, 0.2, seed=1)
    >>> len(train), len(val), {c.id for c in train} & {c.id for c in val}
    (83, 17, set())
    """
    if not 0 <= fraction < 1:
        raise ConfigError([Problem("validation", f"expected a fraction from 0 to below 1, got "
                                   f"{fraction}", "fraction")])
    if fraction == 0:
        return list(conversations), []
    n = len(conversations)
    if n < 2:
        raise ConfigError([Problem("validation", f"a held-out split needs at least 2 "
                                   f"conversations, the dataset has {n}", "fraction")],
                          fix="Add conversations, or set the validation fraction to 0.")
    position = {c.id: _position(seed, c.id) for c in conversations}
    held = {cid for cid, pos in position.items() if pos < fraction}
    # Tiny datasets: keep both sides non-empty, moving the conversation nearest the line.
    if not held:
        held = {min(position, key=position.get)}
    elif len(held) == n:
        held.discard(max(position, key=position.get))
    return ([c for c in conversations if c.id not in held],
            [c for c in conversations if c.id in held])
