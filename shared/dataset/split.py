"""Deterministic train/validation split by conversation, never by pair (no leakage)."""
from __future__ import annotations

import hashlib

from shared.dataset.model import Conversation
from shared.errors import ConfigError, Problem


def _rank(seed: int, conversation_id: str) -> str:
    return hashlib.sha256(f"{seed}:{conversation_id}".encode()).hexdigest()


def split_conversations(conversations: list[Conversation], fraction: float = 0.2,
                        seed: int = 42) -> tuple[list[Conversation], list[Conversation]]:
    """Hold out ``fraction`` of the conversations, chosen by a seeded hash of their ids.

    The choice depends only on the seed and each conversation's id: the same file gives
    the same split on every machine, and adding conversations never moves an existing one
    from validation into training. Both parts keep the file's order.

    >>> from shared.dataset.model import Conversation
    >>> convs = [Conversation(f"c{i}", ()) for i in range(10)]
    >>> train, val = split_conversations(convs, 0.2, seed=1)
    >>> len(train), len(val), {c.id for c in train} & {c.id for c in val}
    (8, 2, set())
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
    n_val = min(max(1, round(n * fraction)), n - 1)
    held = {c.id for c in sorted(conversations, key=lambda c: _rank(seed, c.id))[:n_val]}
    return ([c for c in conversations if c.id not in held],
            [c for c in conversations if c.id in held])
