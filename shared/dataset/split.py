"""Deterministic train/validation split by conversation, never by pair (no leakage)."""
from __future__ import annotations

import hashlib
import math

from shared.dataset.types import Conversation
from shared.errors import ConfigError, Problem


def _position(seed: int, conversation_id: str) -> float:
    """Where a conversation ranks, in [0, 1), from a seeded hash of its id alone."""
    digest = hashlib.sha256(f"{seed}:{conversation_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def held_out_count(n: int, fraction: float) -> int:
    """How many of ``n`` conversations a validation ``fraction`` holds out: exactly
    ``round(fraction x n)`` (halves round up), at least 1 and leaving at least 1 to train.

    >>> held_out_count(16, 0.2), held_out_count(100, 0.2), held_out_count(3, 0.2), held_out_count(2, 0.9)
    (3, 20, 1, 1)
    >>> held_out_count(10, 0.25), held_out_count(10, 0)
    (3, 0)
    """
    if fraction == 0:
        return 0
    return min(max(math.floor(fraction * n + 0.5), 1), n - 1)


def split_conversations(conversations: list[Conversation], fraction: float = 0.2,
                        seed: int = 42) -> tuple[list[Conversation], list[Conversation]]:
    """Hold out exactly :func:`held_out_count` conversations: those that rank first by a
    seeded hash of their id.

    The rank depends on nothing but the seed and the ids, so the same file and seed give
    the same split on every machine and in every attempt. Both parts keep the file's order.

    >>> from shared.dataset.types import Conversation
    >>> convs = [Conversation(f"c{i}", ()) for i in range(100)]
    >>> train, val = split_conversations(convs, 0.2, seed=1)
    >>> len(train), len(val), {c.id for c in train} & {c.id for c in val}
    (80, 20, set())
    >>> [c.id for c in split_conversations(convs[:16], 0.2, seed=1)[1]]
    ['c0', 'c5', 'c10']
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
    ranked = sorted(conversations, key=lambda c: (_position(seed, c.id), c.id))
    held = {c.id for c in ranked[:held_out_count(n, fraction)]}
    return ([c for c in conversations if c.id not in held],
            [c for c in conversations if c.id in held])
