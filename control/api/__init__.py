"""The JSON API blueprint: ``/api/training-files``, ``/api/training/...``, ``/api/openapi.json``."""
from flask import jsonify

from control.api import (audit, base_models, budget, compare, completion_webhook, costs, delivery,  # noqa: F401
                         downloads, errors, evaluations, job_records, notifications, openapi, options, rate_limit,
                         reviews, rubrics, templates, tokens, training_files, training_jobs, trends, users,
                         webhooks)
from control.api.blueprint import bp
from control.services.exceptions import BudgetExceeded, Conflict, Forbidden, JobStateError, NotFound, QuotaExceeded
from shared.errors import ConfigError, DatasetError, PipelineError


@bp.errorhandler(NotFound)
def _not_found(exc: NotFound):
    return errors.error_response(404, "not_found", str(exc))


@bp.errorhandler(JobStateError)
def _conflict(exc: JobStateError):
    return errors.error_response(409, exc.code, exc.message)


@bp.errorhandler(Forbidden)
def _forbidden(exc: Forbidden):
    return errors.error_response(403, "forbidden", exc.message)


@bp.errorhandler(Conflict)
def _clash(exc: Conflict):
    return errors.error_response(409, exc.code, exc.message)


@bp.errorhandler(QuotaExceeded)
def _over_quota(exc: QuotaExceeded):
    body, status = errors.error_response(429, "quota_exceeded", exc.message)
    body.headers["Retry-After"] = str(exc.retry_after_s)
    return body, status


@bp.errorhandler(BudgetExceeded)
def _over_budget(exc: BudgetExceeded):
    return jsonify(error={"code": "budget_exceeded", "message": exc.message, "field": "budget_override",
                          "budget": exc.figures}), 402


@bp.errorhandler(DatasetError)
def _bad_dataset(exc: DatasetError):
    e = errors.from_pipeline(exc, 422)
    return errors.error_response(e.status, e.code, e.message, e.field, e.details)


@bp.errorhandler(ConfigError)
def _bad_config(exc: ConfigError):
    e = errors.from_pipeline(exc, 400)
    return errors.error_response(e.status, e.code, e.message, e.field, e.details)


@bp.errorhandler(PipelineError)
def _platform(exc: PipelineError):
    status = 400 if exc.error_type.is_user_error else 503
    return errors.error_response(status, exc.error_type.value, exc.message)


__all__ = ["bp"]
