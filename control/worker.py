"""``pipeline worker``: an RQ worker that also sweeps for lost work.

The sweep (``control/services/sweep.py``) runs as part of RQ's maintenance, every
``SWEEP_INTERVAL_SECONDS``: a task lost to a killed worker, a Redis restart or a dropped
database connection is enqueued again. It reads the database, not Redis, so it finds lost
work even when Redis came back empty.
"""
from __future__ import annotations

import logging
import time

from flask import current_app
from rq import Worker
from rq.exceptions import StopRequested

from control.extensions import db
from control.services.queue import get_queue, notify_queue, redis_connection
from control.services.sweep import sweep

log = logging.getLogger(__name__)


class SweepingWorker(Worker):
    """An RQ worker whose maintenance includes the recovery sweep."""

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
        if self.stop_asked:
            # SIGTERM came during one of the sweep's isolated steps (``sweep._isolated`` catches
            # Exception, and RQ's StopRequested is one): an idle RQ worker stops only on that
            # exception, so raise it again, or the worker would run on until SIGKILL.
            raise StopRequested()


def queues_for(which: str) -> list:
    """``jobs``: the jobs' queue; ``notify``: the notify queue (Slack, email, webhooks); ``all``:
    both, the jobs' first (a worker takes from the first queue that has work)."""
    return {"jobs": [get_queue()], "notify": [notify_queue()], "all": [get_queue(), notify_queue()]}[which]


def work_forever(burst: bool = False, queues: str = "all") -> None:
    """Run a sweeping worker; if it quits on its own (Redis went away mid-call), start another.
    A stop request (SIGTERM, Ctrl-C) ends it."""
    interval = current_app.config["SWEEP_INTERVAL_SECONDS"]
    while True:
        worker = SweepingWorker(queues_for(queues), connection=redis_connection(), sweep_interval=interval)
        try:
            worker.work(burst=burst, with_scheduler=True)
        except Exception:  # noqa: BLE001 - Redis unreachable while registering: wait, then again
            log.exception("the worker stopped")
        if burst or worker.stop_asked or worker._stop_requested:
            return
        log.warning("the worker quit unexpectedly; starting a new one in 5 s")
        time.sleep(5)
