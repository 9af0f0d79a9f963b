"""``/api/training/cost-estimate``: what a configuration would cost, before creating the job."""
from __future__ import annotations

from flask import g, jsonify

from control.api import bp
from control.api.requests import query_args
from control.schemas import CostQuery
from control.services import jobs

OVERRIDES = ("num_epochs", "batch_size", "gradient_accumulation_steps", "lora_r", "max_steps")


@bp.get("/training/cost-estimate")
def cost_estimate():
    q = query_args(CostQuery)
    training_file = jobs.visible_file(g.user, q.training_file_id)
    overrides = {k: getattr(q, k) for k in OVERRIDES if getattr(q, k) is not None}
    hp, _, base_model, method, gpu_type = jobs.resolve_settings(q.preset, overrides, q.base_model,
                                                               q.method, q.gpu_type)
    est = jobs.estimate_for(training_file, hp, base_model, method, gpu_type, q.pricing)
    return jsonify({**est.to_dict(), "base_model": base_model, "method": method, "preset": q.preset})
