"""``/api/training/cost-estimate``: what a configuration would cost, before creating the job."""
from __future__ import annotations

from flask import g, jsonify

from control.api.blueprint import bp
from control.api.documentation import api_doc
from control.api.requests import query_args
from control.responses import CostCalibrationOut, CostEstimateOut, ErrorOut
from control.schemas import COST_SETTINGS, CostQuery
from control.services.calibration import calibration
from control.services.training_files import ready_file
from control.services.training_jobs import estimate_for, resolve_settings


@bp.get("/training/cost-estimate")
@api_doc("Estimate duration and cost for a training file and settings", query=CostQuery,
         responses={200: CostEstimateOut, 404: ErrorOut, 409: ErrorOut})
def cost_estimate():
    q = query_args(CostQuery)
    training_file = ready_file(g.user, q.training_file_id)
    overrides = {k: getattr(q, k) for k in COST_SETTINGS if getattr(q, k) is not None}
    settings = resolve_settings(q.preset, overrides, q.base_model, q.method, q.gpu_type)
    est = estimate_for(training_file, settings, q.pricing)
    return jsonify({**est.to_dict(), "base_model": settings.base_model, "method": settings.method,
                    "preset": q.preset})


@bp.get("/training/cost-calibration")
@api_doc("How good the estimates are: completed jobs' actual cost against their estimate, the share "
         "within ±15% (the target is 90%), the median ratio and the five furthest off",
         responses={200: CostCalibrationOut})
def cost_calibration():
    return jsonify(calibration())
