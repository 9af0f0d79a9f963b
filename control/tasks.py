"""RQ tasks: the thin entry points a worker runs. They take ids, not objects, run inside
the app, and call the services that hold the rules.

- ``dispatch(job_id)``: send the job's next attempt to the GPU endpoint (``services/dispatch.py``).
- ``monitor(attempt_id)``: one stream read of an attempt, rescheduling itself
  (``services/monitoring.py``).
- ``cancel(job_id)``: ``/cancel`` on the endpoint, then ``cancelled`` (``services/dispatch.py``).
- ``validate_training_file(file_id)``: validate and analyse an uploaded dataset once:
  ``ready`` or ``invalid`` (``services/training_files.py``).
- ``dispatch_evaluation(run_id)`` and ``monitor_evaluation(run_id)``: a re-evaluation of a
  finished job on the GPU endpoint (``services/re_evaluation.py``).
- ``judge_evaluation(job_id, run_id)``: the automatic judge's pairwise verdicts on an
  evaluation's answers, when a judge is configured (``services/judging.py``).
- ``build_report(job_id, trigger)``: a new version of the validation report, when what it
  says has changed (``services/validation_reports.py``).

- ``fan_out(notice_id)``, ``deliver_message(message_id)``, ``deliver_webhook(delivery_id)``:
  telling people, on the notify queue (``services/notices.py``, ``notifications/``, ``webhooks.py``).

Services enqueue these by name (``services/queue.py``) and never import this module.
"""
from __future__ import annotations

import functools

from flask import has_app_context

from control.app import create_app
from control.extensions import db
from control.models import TrainingJob
from control.services import dispatch as dispatching
from control.services import judging, monitoring, notices, notifications, queue, re_evaluation
from control.services import validation_reports, webhooks
from control.services import training_files


def in_app(fn):
    """Run a task inside the app: the worker's own, or one built from the environment."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if not has_app_context():
            with create_app().app_context():
                return wrapper(*args, **kwargs)
        try:
            return fn(*args, **kwargs)
        finally:
            db.session.remove()
    return wrapper


@in_app
def dispatch(job_id: str) -> str | None:
    return dispatching.dispatch(job_id)


@in_app
def monitor(attempt_id: str, failures: int = 0, token: str | None = None) -> str:
    return monitoring.monitor(attempt_id, failures, token)


@in_app
def cancel(job_id: str) -> str:
    return dispatching.cancel_on_endpoint(job_id)


@in_app
def validate_training_file(file_id: str) -> str | None:
    return training_files.validate(file_id)


@in_app
def dispatch_evaluation(run_id: str) -> str:
    return re_evaluation.dispatch(run_id)


@in_app
def monitor_evaluation(run_id: str, failures: int = 0) -> str:
    return re_evaluation.monitor(run_id, failures)


@in_app
def judge_evaluation(job_id: str, run_id: str | None = None) -> str:
    return judging.judge_evaluation(job_id, run_id)


@in_app
def build_report(job_id: str, trigger: str) -> str:
    queue.redis_connection().delete(queue.report_pending_key(job_id))   # later triggers queue another
    job = db.session.get(TrainingJob, job_id)
    if job is None:
        return "job gone"
    row = validation_reports.build(job, trigger)
    return f"version {row.version}" if row else "unchanged"


@in_app
def fan_out(notice_id: int) -> str:
    return notices.fan_out(notice_id)


@in_app
def deliver_message(message_id: int) -> str:
    return notifications.deliver(message_id)


@in_app
def deliver_webhook(delivery_id: int) -> str:
    return webhooks.deliver(delivery_id)
