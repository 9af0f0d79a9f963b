"""The comparison's table: one row per figure (final losses, the evaluation's measures,
cost, duration, throughput, interruptions, the delivery decision), one cell per run, and
the best cell of each row marked.

Pure: :func:`rows` takes each run's facts as ``gather`` collects them. Each row says
whether higher or lower is better; the best is found on the figures as shown (rounded to
the row's digits), so two runs that read the same tie. Ties share the mark; a run without
the figure, or still running where the figure is not final yet (cost, duration,
interruptions), takes no part; a row where fewer than two runs have the figure, or where
every run has the same, marks none.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from control.services.formatting import minutes, money
from shared.evaluation.report import Measure
from shared.evaluation.targets import Status

HIGHER, LOWER = "higher", "lower"
# The delivery decision as a rank: a person's approval above every target met, a rejection below all.
GATE_RANK = {"approved": 4, "met": 3, "waiting_for_review": 2, "not_met": 1, "rejected": 0}
GATE_TEXT = {"approved": "approved for delivery", "met": "every target met, not decided",
             "waiting_for_review": "waiting for people's scores", "not_met": "a target not met",
             "rejected": "rejected for delivery"}
MEASURE_ROWS = (
    ("perplexity", "Perplexity gain (held-out, % lower than the base model)"),
    ("emotional_intelligence", "Emotional intelligence (% better, people's scores)"),
    ("forgetting", "Financial knowledge kept (% of the base model's)"),
    ("brand_voice", "Brand voice (average score of 5)"),
    ("reference_similarity", "Closer to the reference replies (% of held-out turns)"),
    ("judge", "Automatic judge (% of pairs won by the adapter)"),
)
NO_FIGURE = {Status.WAITING_FOR_REVIEW: "waiting for people's scores", Status.NOT_MEASURED: "not measured"}


def best_of(values: Sequence[float | None], better: str, digits: int = 6) -> list[int]:
    """The places of the best values, compared as rounded to ``digits`` decimals.

    >>> best_of([1.2, 0.9, 1.5], LOWER), best_of([31.5, 38.2, 24.0], HIGHER)
    ([1], [1])
    >>> best_of([0.9, 0.9, 1.5], LOWER)           # a tie shares the mark
    [0, 1]
    >>> best_of([1.2341, 1.2344, 2.0], LOWER, digits=3)   # the same as shown: a tie
    [0, 1]
    >>> best_of([None, 2.0, None], HIGHER), best_of([None, None], LOWER)   # nothing to beat
    ([], [])
    >>> best_of([3, 3, 3], HIGHER)                # all the same: none stands out
    []
    >>> best_of([None, 2.0, 5.0, 2.0], LOWER)
    [1, 3]
    """
    if better not in (HIGHER, LOWER):
        raise ValueError(f"better is {HIGHER!r} or {LOWER!r}, got {better!r}")
    shown = [None if v is None else round(float(v), digits) for v in values]
    present = [v for v in shown if v is not None]
    if len(present) < 2 or len(set(present)) == 1:
        return []
    top = max(present) if better == HIGHER else min(present)
    return [i for i, v in enumerate(shown) if v == top]


@dataclass(frozen=True)
class Figure:
    """One row's figure for one run: the number ranked, what the cell says, its interval."""

    value: float | None
    text: str
    interval: list[float] | None = None
    status: str | None = None
    ranked: bool = True          # False: shown, but not final yet (a running job's cost so far)


def _number(digits: int, unit: str = "") -> Callable[[float | None], str]:
    return lambda v: "—" if v is None else f"{v:,.{digits}f}{unit}"


def _plain(value: float | None, say: Callable, final: bool = True) -> Figure:
    text = say(value)
    return Figure(value, text if final or value is None else f"{text} so far", ranked=final)


def measure_figure(m: Measure | None) -> Figure:
    """A measure's cell: its improvement (brand voice: the adapter's average of 5), the
    95% interval, and its status; a measure without a figure says why.

    >>> measure_figure(Measure(id="perplexity", name="p", unit="u", improvement=31.5, interval=[24.1, 37.9],
    ...                        improvement_unit="% lower", status="met"))
    Figure(value=31.5, text='31.5% [24.1, 37.9]', interval=[24.1, 37.9], status='met', ranked=True)
    >>> measure_figure(Measure(id="emotional_intelligence", name="e", unit="u", status="waiting_for_review")).text
    "waiting for people's scores"
    >>> measure_figure(None).text
    '—'
    """
    if m is None:
        return Figure(None, "—")
    status = str(m.status)
    if m.id == "brand_voice":
        value = m.adapter
        text = "—" if value is None else f"{value:.2f} of 5"
    else:
        value = m.improvement
        text = "—" if value is None else f"{value:.1f}%"
    if value is None:
        return Figure(None, NO_FIGURE.get(m.status, "not measured" if m.scored_by != "people"
                                          else "hidden until your own review is done"), status=status)
    if m.interval:
        lo, hi = m.interval
        text += f" [{lo:.1f}, {hi:.1f}]" if m.id != "brand_voice" else ""
    return Figure(value, text, list(m.interval) if m.interval else None, status)


def _row(row_id: str, label: str, better: str, digits: int, figures: list[Figure], job_ids: Sequence[str]) -> dict:
    best = set(best_of([f.value if f.ranked else None for f in figures], better, digits))
    return {"id": row_id, "label": label, "better": better,
            "cells": [{"job_id": j, "value": f.value, "text": f.text, "interval": f.interval, "status": f.status,
                       "final": f.ranked, "best": i in best} for i, (j, f) in enumerate(zip(job_ids, figures))]}


def rows(runs: Sequence[dict]) -> list[dict]:
    """The table: each run's facts (``job_id``, ``final``, ``final_training_loss``,
    ``final_validation_loss``, ``measures`` by id, ``cost``, ``duration_minutes``,
    ``tokens_per_second``, ``interruptions``, ``gate``) as rows of cells, best marked."""
    ids = [r["job_id"] for r in runs]
    loss = _number(4)
    out = [_row("final_training_loss", "Final training loss", LOWER, 4,
                [_plain(r["final_training_loss"], loss) for r in runs], ids),
           _row("final_validation_loss", "Final validation loss (held-out sample)", LOWER, 4,
                [_plain(r["final_validation_loss"], loss) for r in runs], ids)]
    for measure_id, label in MEASURE_ROWS:
        if measure_id == "perplexity" or any(measure_id in r["measures"] for r in runs):
            out.append(_row(measure_id, label, HIGHER, 2 if measure_id == "brand_voice" else 1,
                            [measure_figure(r["measures"].get(measure_id)) for r in runs], ids))
    out += [
        _row("cost", "Cost", LOWER, 4, [_plain(r["cost"], money, r["final"]) for r in runs], ids),
        _row("duration", "Duration", LOWER, 2,
             [_plain(r["duration_minutes"], minutes, r["final"]) for r in runs], ids),
        _row("tokens_per_second", "Tokens per second (mean of the steps drawn)", HIGHER, 0,
             [_plain(r["tokens_per_second"], _number(0)) for r in runs], ids),
        _row("interruptions", "Interruptions (spot reclaims, lost workers)", LOWER, 0,
             [_plain(r["interruptions"], lambda v: f"{v:d}", r["final"]) for r in runs], ids),
        _row("gate", "Delivery decision", HIGHER, 0,
             [Figure(GATE_RANK.get(r["gate"]), GATE_TEXT.get(r["gate"], "not evaluated"), status=r["gate"])
              for r in runs], ids),
    ]
    return out
