"""Which RunPod endpoint runs each GPU choice, and at what price.

``GPU_ENDPOINTS`` maps ``"<GPU type>:<tier>"`` to an endpoint id (spot and on-demand H100
and A100 endpoints are separate RunPod endpoints); ``GPU_PRICES`` overrides the catalogue's
hourly prices (``shared/cost.py``). A job is sent to the endpoint of its choice and priced
at its tier; a choice no endpoint serves is refused when the job is created.
"""
from __future__ import annotations

from flask import current_app

from shared import cost
from shared.errors import ConfigError, Problem


def catalog() -> dict[str, cost.GPU]:
    """The GPU catalogue with this deployment's prices."""
    return cost.gpu_catalog(current_app.config.get("GPU_PRICES") or {})


def served() -> list[str]:
    """The ``type:tier`` choices some endpoint serves, in the catalogue's order."""
    mapped = current_app.config["GPU_ENDPOINTS"]
    return [f"{g}:{t}" for g in catalog() for t in cost.PRICING_TIERS if f"{g}:{t}" in mapped]


def endpoint_for(gpu_type: str, pricing: str) -> str:
    """The endpoint id for a GPU choice; ``ConfigError`` naming what is served if none is."""
    mapped = current_app.config["GPU_ENDPOINTS"]
    key = f"{gpu_type}:{pricing}"
    if key not in mapped:
        raise ConfigError([Problem("gpu", f"no GPU endpoint serves {gpu_type} at {pricing} pricing on this "
                                   f"deployment; it serves: {', '.join(served()) or 'none'} (GPU_ENDPOINTS)",
                                   "gpu")])
    return mapped[key]
