"""Training-file validations run in the test process: the queued ``validate_training_file``
tasks, and only those (a test's queued dispatches stay queued), performed as a worker would.

- ``run_validations(app)``: perform the validations queued now, in this thread.
- ``validating_in_background(app)``: a thread performing them while the block runs, so an
  upload with ``?wait=true`` answers 201 or 422 as a synchronous upload did.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager


def run_validations(app) -> int:
    """Perform every queued training-file validation; returns how many ran."""
    from control.services.queue import VALIDATE_TRAINING_FILE, get_queue

    with app.app_context():
        queue = get_queue()
        ran = 0
        for job in queue.get_jobs():
            if job is not None and job.func_name == VALIDATE_TRAINING_FILE:
                queue.remove(job)
                job.perform()
                ran += 1
        return ran


@contextmanager
def validating_in_background(app, pause_s: float = 0.02):
    """While the block runs, a thread performs each validation as soon as it is queued."""
    stop = threading.Event()
    failures: list[BaseException] = []

    def loop():
        while not stop.is_set():
            try:
                if not run_validations(app):
                    stop.wait(pause_s)
            except BaseException as exc:  # noqa: BLE001 - handed to the test below
                failures.append(exc)
                return

    thread = threading.Thread(target=loop, name="validations", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(30)
    if failures:
        raise failures[0]
