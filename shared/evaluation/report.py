"""The evaluation's documents, defined once: what the handler writes under the job's
prefix and the control plane reads back (``shared.storage.layout``'s evaluation keys).

- ``summary.json``: an :class:`EvaluationSummary`, the measures against their targets and
  the data each was computed on;
- ``samples/<suite>.jsonl``: one :class:`Sample` a line, the prompt, both models' answers,
  the reference where there is one, and the per-sample scores;
- ``parts/<part>.json``: each finished part, so a lost worker resumes the rest.
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from shared.evaluation.targets import Status
from shared.storage.base import Storage

Suite = Literal["heldout", "ei", "custom"]
SUITES: tuple[str, ...] = ("heldout", "ei", "custom")
SUITE_NAMES = {"heldout": "held-out turns", "ei": "emotional-intelligence scenarios",
               "custom": "the customer's prompts"}
MeasureId = Literal["perplexity", "emotional_intelligence", "forgetting", "brand_voice",
                    "reference_similarity", "judge"]


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Measure(_Closed):
    """One measure: base, adapter, the improvement and its 95% interval, the target and
    whether it is met."""

    id: MeasureId
    name: str
    unit: str                         # what base and adapter are in
    base: float | None = None
    adapter: float | None = None
    improvement: float | None = None
    improvement_unit: str | None = None
    interval: list[float] | None = None   # the 95% interval of ``improvement``
    target: float | None = None
    target_text: str | None = None
    status: Status
    scored_by: Literal["computed", "model", "people"] = "computed"
    n: int | None = None              # items it was computed on
    note: str | None = None


class Sample(_Closed):
    """One prompt the two models answered."""

    suite: Suite
    id: str
    category: str | None = None
    prompt: list[dict]                # the chat messages, ending with the user's
    base: str
    adapter: str
    reference: str | None = None
    guidance: list[str] | None = None  # what a good reply does (the emotional-intelligence scenarios)
    scores: dict[str, float | None] = {}

    @property
    def system(self) -> str | None:
        """The system message the prompt opens with, if any."""
        return next((m["content"] for m in self.prompt if m.get("role") == "system"), None)

    @property
    def turns(self) -> list[dict]:
        """The conversation without its system message, ending with the client's message.

        >>> s = Sample(suite="ei", id="x", base="b", adapter="a", prompt=[
        ...     {"role": "system", "content": "s"}, {"role": "user", "content": "hi"}])
        >>> s.system, s.turns[-1]["content"]
        ('s', 'hi')
        """
        return [m for m in self.prompt if m.get("role") != "system"]


class EvaluationSummary(_Closed):
    version: int = 1
    fingerprint: str
    run_id: str | None = None
    size: Literal["quick", "full", "perplexity"]
    max_new_tokens: int
    measures: list[Measure]
    perplexity: dict | None = None     # base, adapter, per-conversation values, interval
    forgetting: dict | None = None     # accuracy by topic, retention
    similarity: dict | None = None     # means, win rate and its interval
    suites: dict[str, dict]            # per suite: samples, categories, storage key
    data: dict                         # what it was computed on
    flags: list[dict] = []             # e.g. forgetting below target, with the advice
    timings: dict[str, float] = {}     # seconds each part took
    tokens: dict[str, int] = {}        # prompt and generated tokens, for the cost of a full suite


def write_samples(storage: Storage, key: str, rows: list[Sample]) -> None:
    """A suite's samples, one JSON line each."""
    storage.put_bytes(key, "".join(r.model_dump_json() + "\n" for r in rows).encode())


def read_samples(storage: Storage, key: str) -> list[Sample]:
    """A suite's samples as written by :func:`write_samples`; none when the suite has no file."""
    if not storage.exists(key):
        return []
    return [Sample.model_validate_json(line) for line in storage.get_bytes(key).decode().splitlines() if line]
