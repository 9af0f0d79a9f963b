"""The JSON API blueprint: ``/api/training-files``, ``/api/training/...``, ``/api/openapi.json``."""
from flask import Blueprint

from control.api import errors
from control.api.auth import authenticate
from control.services.jobs import JobStateError, NotFound
from shared.errors import ConfigError, DatasetError, PipelineError

bp = Blueprint("api", __name__, url_prefix="/api")
bp.before_request(authenticate)


@bp.errorhandler(NotFound)
def _not_found(exc: NotFound):
    return errors.error_response(404, "not_found", str(exc))


@bp.errorhandler(JobStateError)
def _conflict(exc: JobStateError):
    return errors.error_response(409, exc.code, exc.message)


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


from control.api import costs, downloads, job_records, jobs, openapi, training_files  # noqa: E402,F401

__all__ = ["bp"]
