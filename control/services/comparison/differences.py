"""Which settings differ between runs: each job's configuration flattened to dotted fields
(``hyperparameters.learning_rate``), then only the fields whose values are not all equal.

Pure: the caller passes each job's configuration as :func:`settings_of` builds it."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

# What a job's stored configuration holds that is not a setting a person chose: the estimate
# (a consequence of the settings), the overrides (already inside the hyperparameters), where
# the GPU endpoint is and what it charges, and the checkpoint a continued run loaded.
NOT_SETTINGS = ("estimate", "overrides", "gpu.endpoint_id", "gpu.price_per_hour", "init_from")


def flatten(config: Mapping, prefix: str = "") -> dict:
    """A nested configuration as one level of dotted fields, in its own order; a list is one
    value (``target_modules`` differs as a whole).

    >>> flatten({"hyperparameters": {"learning_rate": 0.0002, "lora": {"r": 16}}, "method": "lora",
    ...          "target_modules": ["q_proj", "v_proj"], "gpu": {}})
    {'hyperparameters.learning_rate': 0.0002, 'hyperparameters.lora.r': 16, 'method': 'lora', 'target_modules': ['q_proj', 'v_proj']}
    """
    out: dict = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def _same(values: Sequence) -> bool:
    """Whether every value is the same one; a whole number and its float are the same.

    >>> _same([2, 2.0]), _same([1, True]), _same([None, None]), _same([["a"], ["a"]]), _same([0.0002, 0.0005])
    (True, False, True, True, False)
    """
    first = values[0]
    return all(v == first and isinstance(v, bool) == isinstance(first, bool) for v in values[1:])


def differences(configs: Sequence[Mapping]) -> list[dict]:
    """The fields whose values differ between the configurations, each with every run's value
    (``None`` where a run has no such field): the top-level ones first, then by name (a
    stored configuration's key order is the database's, not the person's).

    >>> differences([{"a": 1, "b": {"e": [1], "c": 2}}, {"a": 1, "b": {"c": 3, "e": [1]}, "d": True}])
    [{'field': 'd', 'values': [None, True]}, {'field': 'b.c', 'values': [2, 3]}]
    >>> differences([{"a": 1}, {"a": 1.0}])
    []
    """
    flat = [flatten(c) for c in configs]
    fields = sorted({name for f in flat for name in f}, key=lambda name: (name.count("."), name))
    out = []
    for name in fields:
        values = [f.get(name) for f in flat]
        if not _same(values):
            out.append({"field": name, "values": values})
    return out


def settings_of(configuration: Mapping, **top: object) -> dict:
    """What a person chose for a run: the top-level facts (``preset``, ``dataset``...)
    first, then its stored configuration without what is not a setting (``NOT_SETTINGS``).

    >>> settings_of({"hyperparameters": {"lora_r": 16}, "estimate": {"cost_usd": 1.0},
    ...              "gpu": {"type": "H100_PCIE", "endpoint_id": "x", "price_per_hour": 2.4}}, preset="balanced")
    {'preset': 'balanced', 'hyperparameters': {'lora_r': 16}, 'gpu': {'type': 'H100_PCIE'}}
    """
    def keep(node: Mapping, prefix: str) -> dict:
        kept = {}
        for key, value in node.items():
            name = f"{prefix}{key}"
            if name in NOT_SETTINGS:
                continue
            kept[key] = keep(value, f"{name}.") if isinstance(value, Mapping) else value
        return kept
    return {**top, **keep(configuration or {}, "")}
