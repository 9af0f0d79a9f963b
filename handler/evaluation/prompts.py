"""The prompts each suite puts to both models, sampled by the evaluation's size.

- held-out turns: each held-out pair's prompt (system, the conversation so far, the client's
  message), its reference the dataset's ``target_response``;
- the emotional-intelligence scenarios (``shared.suites``), under the consultant's system prompt;
- the customer's own prompts (``shared.dataset.prompts``), with their references where given.

``quick`` takes a small, spread sample of each (the README's demo), ``full`` all of it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from itertools import chain, zip_longest

from shared.dataset.types import Conversation
from shared import suites

QUICK = {"heldout": 6, "ei": 10, "custom": 10}
FULL_CAP = {"heldout": 500, "ei": 50, "custom": 1000}


@dataclass(frozen=True)
class Case:
    suite: str
    id: str
    messages: list[dict]
    reference: str | None = None
    category: str | None = None
    guidance: list[str] = field(default_factory=list)


def heldout(conversations: list[Conversation], size: str) -> list[Case]:
    """Held-out pairs, taken round-robin over the conversations (a quick sample spans them)."""
    per_conversation = [c.examples for c in conversations]
    examples = [e for e in chain.from_iterable(zip_longest(*per_conversation)) if e is not None]
    limit = QUICK["heldout"] if size == "quick" else FULL_CAP["heldout"]
    return [Case("heldout", e.id, [m.to_dict() for m in e.prompt], reference=e.target)
            for e in examples[:limit]]


def emotional_intelligence(size: str) -> list[Case]:
    suite = suites.emotional_intelligence()
    system = {"role": "system", "content": suite.system_prompt}
    return [Case("ei", s.id, [system, {"role": "user", "content": s.user_message()}],
                 category=s.category, guidance=list(s.good_reply))
            for s in suite.sample(size)]


def custom(prompts, size: str) -> list[Case]:
    """The customer's prompts (``PromptCase``s), in their file's order."""
    limit = QUICK["custom"] if size == "quick" else FULL_CAP["custom"]
    return [Case("custom", p.id, [dict(m) for m in p.messages], reference=p.reference,
                 category=p.category) for p in prompts[:limit]]
