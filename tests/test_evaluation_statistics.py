"""The evaluation's intervals (scipy's bootstrap) on cases whose answer is known."""
from __future__ import annotations

import math

import numpy as np
import pytest

from shared.evaluation import measures
from shared.evaluation.statistics import mean_interval, perplexity_improvement, win_rate
from shared.evaluation.targets import Status


def test_the_improvement_of_conversations_that_all_improve_alike_has_a_point_interval():
    r = perplexity_improvement([30.0, 60.0, 15.0], [15.0, 30.0, 7.5], [10, 20, 5])
    expected = 100 * (1 - math.exp(-1.5))          # loss per token 3.0 -> 1.5
    assert r["improvement_pct"] == pytest.approx(expected, abs=0.01)
    assert r["interval_pct"] == [pytest.approx(expected, abs=0.01)] * 2


def test_the_interval_of_a_mean_matches_the_normal_theory_on_a_large_sample():
    values = np.random.default_rng(3).normal(10.0, 2.0, size=400)
    r = mean_interval(values)
    half = 1.96 * values.std(ddof=1) / math.sqrt(len(values))
    assert r["interval"][0] == pytest.approx(values.mean() - half, abs=0.05)
    assert r["interval"][1] == pytest.approx(values.mean() + half, abs=0.05)


def test_the_improvement_interval_covers_the_figure_and_widens_with_disagreement():
    base = [30.0, 31.0, 29.0, 30.0, 30.5, 29.5]
    tokens = [10] * 6
    tight = perplexity_improvement(base, [b * 0.7 for b in base], tokens)
    loose = perplexity_improvement(base, [21.0, 31.0, 10.0, 27.0, 18.0, 24.0], tokens)
    for r in (tight, loose):
        assert r["interval_pct"][0] <= r["improvement_pct"] <= r["interval_pct"][1]
    width = lambda r: r["interval_pct"][1] - r["interval_pct"][0]  # noqa: E731
    assert width(loose) > 5 * width(tight)


def test_a_single_conversation_gives_no_interval_and_the_same_data_the_same_interval():
    assert perplexity_improvement([30.0], [20.0], [10])["interval_pct"] is None
    args = ([30.0, 22.0, 41.0, 18.0], [20.0, 19.0, 30.0, 15.0], [10, 9, 14, 8])
    assert perplexity_improvement(*args) == perplexity_improvement(*args)


def test_win_rate_counts_ties_half_and_refuses_negative_counts():
    r = win_rate(6, 2, 2)
    assert r["rate"] == 0.7 and r["n"] == 10 and 0.4 <= r["interval"][0] < 0.7 < r["interval"][1] <= 1.0
    assert win_rate(0, 0, 5)["interval"] == [0.0, 0.0]
    with pytest.raises(ValueError):
        win_rate(-1, 0, 0)


def test_a_measure_without_peoples_scores_waits_for_review_and_is_never_met():
    ms = {m.id: m for m in measures.all_measures({})}
    assert ms["emotional_intelligence"].status == Status.WAITING_FOR_REVIEW
    assert ms["brand_voice"].status == Status.WAITING_FOR_REVIEW
    assert ms["perplexity"].status == Status.NOT_MEASURED


def test_forgetting_below_95_percent_retention_is_not_met_and_carries_the_advice():
    part = {"base": {"accuracy": 0.8}, "adapter": {"accuracy": 0.72}, "retention_pct": 90.0, "questions": 100}
    m = measures.forgetting(part)
    assert m.status == Status.NOT_MET and "lower learning rate" in m.note and "conservative" in m.note
    assert measures.forgetting({**part, "adapter": {"accuracy": 0.8}, "retention_pct": 100.0}).status == Status.MET
