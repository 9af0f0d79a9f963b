"""People's blind scores, aggregated: pure arithmetic over what reviewers entered.

- **Emotional intelligence.** Each reviewer scores both answers to a scenario 1-5 on
  empathy, clarity and appropriateness and prefers one (or neither). A scenario's score per
  model is the mean over its reviewers and the three criteria; the improvement is the
  adapter's mean against the base model's, with a 95% bootstrap interval over scenarios;
  the adapter's win rate counts each reviewer's preference once, a tie half.
- **Brand voice.** Each reviewer scores an adapter answer 1-5 on every characteristic of
  the job's rubric. The average is over every score; the percentage is the average of 5;
  an answer scored under 3 on any characteristic by anyone is flagged.
- **Agreement.** With two or more reviewers, Krippendorff's alpha (ordinal), from the
  ``krippendorff`` package, over every (item, model, criterion) that two people scored.
"""
from __future__ import annotations

import math
import warnings
from collections import defaultdict
from dataclasses import dataclass, field

import krippendorff
import numpy as np

from shared.evaluation import statistics

SCALE = (1, 2, 3, 4, 5)
EI_CRITERIA = ("empathy", "clarity", "appropriateness")
PREFERENCES = ("adapter", "base", "tie")
FLAG_BELOW = 3
MODELS = ("base", "adapter")


@dataclass(frozen=True)
class EIScore:
    """One reviewer's scores for one scenario, in model terms (never A/B)."""

    item: str
    reviewer: str
    base: dict[str, int]
    adapter: dict[str, int]
    preference: str


@dataclass(frozen=True)
class BrandScore:
    """One reviewer's rubric scores for one adapter answer."""

    item: str
    reviewer: str
    scores: dict[str, int]
    prompt: str = ""
    answer: str = ""
    extra: dict = field(default_factory=dict)


def agreement(ratings: dict[tuple, dict[str, int]]) -> float | None:
    """Krippendorff's alpha (ordinal, 1-5) over units (each a dict reviewer -> score); None
    when fewer than two reviewers scored any unit, or when every score is the same (there is
    no disagreement to measure against).

    >>> agreement({("s1",): {"r1": 1, "r2": 1}, ("s2",): {"r1": 5, "r2": 4}, ("s3",): {"r1": 3, "r2": 3}})
    0.9495
    >>> agreement({("s1",): {"r1": 4}}) is None
    True
    """
    reviewers = sorted({r for unit in ratings.values() for r in unit})
    if len(reviewers) < 2 or not any(len(unit) >= 2 for unit in ratings.values()):
        return None
    data = [[unit.get(r, np.nan) for unit in ratings.values()] for r in reviewers]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        alpha = krippendorff.alpha(reliability_data=np.asarray(data, dtype=float),
                                   level_of_measurement="ordinal", value_domain=list(SCALE))
    return None if math.isnan(alpha) else round(float(alpha), 4)


def preference_rate(scores: list[EIScore]) -> dict:
    """The adapter's win rate, a tie counting half: each scenario's share of preferences
    for the adapter, then the mean over scenarios with its 95% interval resampling
    scenarios (one reviewer's preferences on a scenario are not independent of another's).

    >>> r = preference_rate([EIScore("s1", "r1", {}, {}, "adapter"), EIScore("s1", "r2", {}, {}, "tie"),
    ...                      EIScore("s2", "r1", {}, {}, "base")])
    >>> r["rate"], r["wins"], r["ties"], r["losses"], r["scenarios"]
    (0.375, 1, 1, 1, 2)
    """
    points = {"adapter": 1.0, "tie": 0.5, "base": 0.0}
    per_item: dict[str, list[float]] = defaultdict(list)
    for s in scores:
        per_item[s.item].append(points[s.preference])
    means = [float(np.mean(v)) for _, v in sorted(per_item.items())]
    summary = statistics.mean_interval(means)
    counts = {p: sum(1 for s in scores if s.preference == p) for p in PREFERENCES}
    return {"wins": counts["adapter"], "ties": counts["tie"], "losses": counts["base"], "n": len(scores),
            "scenarios": len(means), "rate": summary["mean"], "interval": summary["interval"]}


def emotional_intelligence(scores: list[EIScore], items_total: int | None = None) -> dict | None:
    """The suite's measure from people's scores; None before anyone has scored.
    ``items_total``: how many scenarios there are to score (``complete`` once each has been)."""
    if not scores:
        return None
    per_item: dict[str, dict[str, list[float]]] = defaultdict(lambda: {"base": [], "adapter": []})
    by_criterion = {c: {"base": [], "adapter": []} for c in EI_CRITERIA}
    units: dict[tuple, dict[str, int]] = defaultdict(dict)
    for s in scores:
        for model in MODELS:
            values = getattr(s, model)
            per_item[s.item][model].append(sum(values[c] for c in EI_CRITERIA) / len(EI_CRITERIA))
            for c in EI_CRITERIA:
                by_criterion[c][model].append(values[c])
                units[(s.item, model, c)][s.reviewer] = values[c]
    items = sorted(per_item)
    base = [float(np.mean(per_item[i]["base"])) for i in items]
    adapter = [float(np.mean(per_item[i]["adapter"])) for i in items]
    result = statistics.mean_improvement(base, adapter)
    total = items_total if items_total is not None else len(items)
    return {**result, "reviewers": len({s.reviewer for s in scores}), "scores": len(scores),
            "items": total, "complete": len(items) >= total,
            "win_rate": preference_rate(scores),
            "agreement": agreement(units),
            "by_criterion": {c: {m: round(float(np.mean(v[m])), 4) for m in MODELS}
                             for c, v in by_criterion.items()}}


def brand_voice(scores: list[BrandScore], characteristics: list[dict], items_total: int | None = None) -> dict | None:
    """The rubric's measure from people's scores; None before anyone has scored.
    ``characteristics`` are the rubric's (``id`` and ``name``), in its order; ``items_total``
    how many answers there are to score."""
    if not scores:
        return None
    names = {c["id"]: c["name"] for c in characteristics}
    values = [v for s in scores for k, v in s.scores.items() if k in names]
    per_char: dict[str, list[int]] = defaultdict(list)
    units: dict[tuple, dict[str, int]] = defaultdict(dict)
    flagged: dict[str, dict] = {}
    for s in scores:
        for k, v in s.scores.items():
            if k not in names:
                continue
            per_char[k].append(v)
            units[(s.item, k)][s.reviewer] = v
            if v < FLAG_BELOW:
                entry = flagged.setdefault(s.item, {"sample_id": s.item, "prompt": s.prompt,
                                                     "answer": s.answer, "low": {}})
                entry["low"][names[k]] = min(v, entry["low"].get(names[k], v))
    average = float(np.mean(values))
    scored = len({s.item for s in scores})
    total = items_total if items_total is not None else scored
    return {"average": round(average, 4), "percent": round(100.0 * average / SCALE[-1], 2),
            "n": scored, "items": total, "complete": scored >= total, "reviewers": len({s.reviewer for s in scores}),
            "scores": len(values), "agreement": agreement(units),
            "by_characteristic": [{"id": c["id"], "name": c["name"],
                                   "mean": round(float(np.mean(per_char[c["id"]])), 4) if per_char[c["id"]] else None}
                                  for c in characteristics],
            "flagged": sorted(flagged.values(), key=lambda f: f["sample_id"])}
