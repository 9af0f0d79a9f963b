"""The evaluation's intervals: scipy's bootstrap over the evaluated items (conversations,
prompts, judged pairs), never a hand-rolled resampler.

Every interval is a 95% percentile bootstrap with a fixed seed, so the same results give
the same interval on every machine. One item gives no interval (``None``): there is nothing
to resample. Items that all agree give the degenerate interval at that value.
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
RESAMPLES = 4000
SEED = 20261201


def _bootstrap(data: tuple[Sequence[float], ...], statistic, *, seed: int = SEED) -> list[float] | None:
    """The 95% interval of ``statistic`` over paired items (each array one column)."""
    arrays = tuple(np.asarray(column, dtype=float) for column in data)
    n = len(arrays[0])
    if n < 2:
        return None
    point = float(statistic(*arrays))
    if all(np.all(a == a[0]) for a in arrays):
        return [point, point]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")       # a few distinct values warn of degeneracy
        result = stats.bootstrap(arrays, statistic, paired=True, vectorized=False,
                                 confidence_level=CONFIDENCE, n_resamples=RESAMPLES,
                                 method="percentile", rng=np.random.default_rng(seed))
    low, high = result.confidence_interval
    if math.isnan(low) or math.isnan(high):
        return [point, point]
    return [float(low), float(high)]


def perplexity(loss_sums: Sequence[float], tokens: Sequence[float]) -> float:
    """Perplexity over items: exp of the summed token loss over the summed token count."""
    return math.exp(min(float(np.sum(loss_sums)) / max(float(np.sum(tokens)), 1.0), 50.0))


def perplexity_improvement(base_loss_sums: Sequence[float], adapter_loss_sums: Sequence[float],
                           tokens: Sequence[float], *, seed: int = SEED) -> dict:
    """How much lower the adapter's perplexity is than the base model's, in percent, with its
    95% interval from resampling the items (held-out conversations): each item brings its
    summed token loss under each model and its token count.

    >>> r = perplexity_improvement([20.0, 20.0], [10.0, 10.0], [10, 10])
    >>> round(r["base"], 3), round(r["adapter"], 3), r["improvement_pct"], r["interval_pct"]
    (7.389, 2.718, 63.21, [63.21, 63.21])
    """
    def improvement(b, a, t):
        base = perplexity(b, t)
        return 100.0 * (base - perplexity(a, t)) / base

    interval = _bootstrap((base_loss_sums, adapter_loss_sums, tokens), improvement, seed=seed)
    return {"base": perplexity(base_loss_sums, tokens), "adapter": perplexity(adapter_loss_sums, tokens),
            "improvement_pct": round(improvement(base_loss_sums, adapter_loss_sums, tokens), 2),
            "interval_pct": [round(x, 2) for x in interval] if interval else None}


def mean_interval(values: Sequence[float], *, seed: int = SEED) -> dict:
    """A mean and its 95% interval.

    >>> mean_interval([1.0, 1.0, 1.0])
    {'mean': 1.0, 'interval': [1.0, 1.0], 'n': 3}
    """
    values = [float(v) for v in values]
    mean = float(np.mean(values)) if values else None
    interval = _bootstrap((values,), np.mean, seed=seed)
    return {"mean": round(mean, 4) if mean is not None else None,
            "interval": [round(x, 4) for x in interval] if interval else None, "n": len(values)}


def win_rate(wins: int, ties: int, losses: int, *, seed: int = SEED) -> dict:
    """The adapter's win rate over compared pairs, a tie counting half, with its 95% interval
    (resampling the pairs).

    >>> win_rate(3, 2, 1)["rate"]
    0.6667
    >>> win_rate(4, 0, 0)["interval"], win_rate(0, 0, 0)["rate"]
    ([1.0, 1.0], None)
    """
    if min(wins, ties, losses) < 0:
        raise ValueError("counts cannot be negative")
    outcomes = [1.0] * wins + [0.5] * ties + [0.0] * losses
    n = len(outcomes)
    interval = _bootstrap((outcomes,), np.mean, seed=seed)
    return {"wins": wins, "ties": ties, "losses": losses, "n": n,
            "rate": round(sum(outcomes) / n, 4) if n else None,
            "interval": [round(x, 4) for x in interval] if interval else None}


def mean_improvement(base: Sequence[float], adapter: Sequence[float], *, seed: int = SEED) -> dict:
    """How much higher the adapter's mean score is than the base model's, in percent of the
    base mean, with its 95% interval from resampling the paired items (scenarios).

    >>> r = mean_improvement([2.0, 3.0], [3.0, 4.5])
    >>> r["base"], r["adapter"], r["improvement_pct"]
    (2.5, 3.75, 50.0)
    """
    if len(base) != len(adapter):
        raise ValueError("base and adapter need one score each per item")
    if not base:
        return {"base": None, "adapter": None, "improvement_pct": None, "interval_pct": None, "n": 0}

    def improvement(b, a):
        mean_b = float(np.mean(b))
        return 100.0 * (float(np.mean(a)) - mean_b) / mean_b if mean_b else 0.0

    interval = _bootstrap((base, adapter), improvement, seed=seed)
    return {"base": round(float(np.mean(base)), 4), "adapter": round(float(np.mean(adapter)), 4),
            "improvement_pct": round(improvement(np.asarray(base, float), np.asarray(adapter, float)), 2),
            "interval_pct": [round(x, 2) for x in interval] if interval else None, "n": len(base)}
