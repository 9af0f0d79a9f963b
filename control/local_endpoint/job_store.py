"""The jobs of one endpoint and the workers that take them: a thread-safe state machine.

No HTTP and no processes here: ``server`` maps requests onto these methods, ``endpoint``
feeds in process exits and the passing of time (``tick``). Every method takes the store's
one lock; the long-polls (``take``, ``read_stream``, ``wait_final``, ``wait_stop``) wait on
one condition that every change notifies.

A job::

    IN_QUEUE --take--> IN_PROGRESS --finish--> COMPLETED | FAILED
        |                  |--cancel--> CANCELLED      (its worker is stopped)
        |                  |--tick----> TIMED_OUT      (executionTimeout; worker stopped)
        |                  '--worker_gone--> FAILED    ("worker lost: ...")
        '--cancel / purge--> CANCELLED
    FAILED | TIMED_OUT --retry--> IN_QUEUE             (same id)
    any state, once its TTL has passed --tick--> deleted (404)

The states, the policy and a job's record are in ``job``; the refusals in ``job_errors``.
"""
from __future__ import annotations

import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

from .job import (CANCELLED, COMPLETED, FAILED, FINAL_STATES, IN_PROGRESS, IN_QUEUE, RETRYABLE,
                  TIMED_OUT, Job, Policy)
from .job_errors import Conflict, NotFound, Unavailable


@dataclass
class WorkerRecord:
    """A worker as the protocol sees it: known from its first request."""

    id: str
    last_seen: float | None = None
    jobs: set = field(default_factory=set)
    draining: bool = False          # stopped by us: it gets no more jobs
    unhealthy: str | None = None    # a failed fitness check it reported


class JobStore:
    """All jobs and workers of one endpoint, in memory."""

    def __init__(self, clock: Callable[[], float] = time.monotonic,
                 new_id: Callable[[], str] | None = None):
        self._clock = clock
        self._new_id = new_id or (lambda: str(uuid.uuid4()))
        self._cond = threading.Condition()
        self._jobs: dict[str, Job] = {}
        self._queue: deque[str] = deque()
        self._workers: dict[str, WorkerRecord] = {}
        self._gone: set[str] = set()
        self._counts = {"completed": 0, "failed": 0, "retried": 0}
        self._finals: list[tuple[str, dict]] = []   # (webhook, status body) not sent yet
        self._closed = False

    # ------------------------------------------------------------------ clients
    def submit(self, job_input: Any, policy: Policy | None = None,
               webhook: str | None = None) -> dict:
        with self._cond:
            if self._closed:
                raise Unavailable("the endpoint is shutting down")
            job = Job(self._new_id(), job_input, policy or Policy(), self._clock(), webhook)
            self._jobs[job.id] = job
            self._queue.append(job.id)
            self._cond.notify_all()
            return {"id": job.id, "status": job.status}

    def status(self, job_id: str) -> dict:
        with self._cond:
            return self._get(job_id).view(self._clock())

    def wait_final(self, job_id: str, wait_s: float) -> dict:
        """The status once the job is final, or as it is after ``wait_s`` (``/runsync``)."""
        deadline = time.monotonic() + wait_s
        with self._cond:
            job = self._get(job_id)
            while job.status not in FINAL_STATES and not self._closed:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
                job = self._get(job_id)
            return job.view(self._clock())

    def read_stream(self, job_id: str, wait_s: float = 0.0) -> dict:
        """Take the chunks not read yet (read-once), waiting up to ``wait_s`` for one."""
        deadline = time.monotonic() + wait_s
        with self._cond:
            job = self._get(job_id)
            while not job.chunks and job.status not in FINAL_STATES and not self._closed:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
                job = self._get(job_id)
            chunks, job.chunks = job.chunks, []
            return {"id": job.id, "status": job.status, "stream": chunks}

    def cancel(self, job_id: str) -> tuple[dict, str | None]:
        """Cancel a job; the worker to stop, if it was running. A final job stays as it is."""
        with self._cond:
            job = self._get(job_id)
            worker = None
            if job.status == IN_QUEUE:
                self._queue.remove(job.id)
                self._finish(job, CANCELLED)
            elif job.status == IN_PROGRESS:
                worker = job.worker_id
                self._finish(job, CANCELLED)
                self._drain(worker)
            return {"id": job.id, "status": job.status}, worker

    def retry(self, job_id: str) -> dict:
        with self._cond:
            if self._closed:
                raise Unavailable("the endpoint is shutting down")
            job = self._get(job_id)
            if job.status not in RETRYABLE:
                raise Conflict(f"only a FAILED or TIMED_OUT job can be retried; "
                               f"job {job_id} is {job.status}")
            job.status, job.queued_at = IN_QUEUE, self._clock()
            job.started_at = job.finished_at = job.worker_id = None
            job.output = job.error = None
            job.chunks = []
            job.retries += 1
            self._counts["retried"] += 1
            self._queue.append(job.id)
            self._cond.notify_all()
            return {"id": job.id, "status": job.status}

    def purge(self) -> int:
        """Cancel every queued job; how many there were."""
        with self._cond:
            removed = 0
            while self._queue:
                self._finish(self._jobs[self._queue.popleft()], CANCELLED,
                             error="purged from the queue")
                removed += 1
            return removed

    def job_counts(self) -> dict:
        """The ``jobs`` part of ``/health``: current queue and running, completed/failed so far."""
        with self._cond:
            running = sum(1 for j in self._jobs.values() if j.status == IN_PROGRESS)
            return {"completed": self._counts["completed"], "failed": self._counts["failed"],
                    "inProgress": running, "inQueue": len(self._queue),
                    "retried": self._counts["retried"]}

    # ------------------------------------------------------------------ workers
    def take(self, worker_id: str, max_jobs: int = 1, wait_s: float = 0.0,
             job_in_progress: bool | None = None) -> list[dict]:
        """Give a worker up to ``max_jobs`` queued jobs, waiting up to ``wait_s`` for one.

        ``job_in_progress=False`` (the SDK's ``job_in_progress=0``) from a worker we believe is
        running a job means that job's result will never come: the job fails.
        """
        deadline = time.monotonic() + wait_s
        with self._cond:
            worker = self._seen(worker_id)
            if worker is None:       # declared lost: no job, but no busy loop either
                while (remaining := deadline - time.monotonic()) > 0 and not self._closed:
                    self._cond.wait(remaining)
                return []
            if job_in_progress is False and worker.jobs:
                for jid in list(worker.jobs):
                    self._finish(self._jobs[jid], FAILED, error=(
                        f"worker lost: worker {worker_id} asked for a new job without "
                        "reporting a result for this one"))
            while not self._queue:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._may_take(worker):
                    return []
                self._cond.wait(remaining)
            if not self._may_take(worker):
                return []
            now, taken = self._clock(), []
            while self._queue and len(taken) < max_jobs:
                job = self._jobs[self._queue.popleft()]
                job.status, job.started_at, job.worker_id = IN_PROGRESS, now, worker_id
                worker.jobs.add(job.id)
                taken.append({"id": job.id, "input": job.input})
            self._cond.notify_all()
            return taken

    def add_chunk(self, worker_id: str, job_id: str, payload: Any) -> bool:
        """A stream chunk from a worker; False (ignored) unless it runs the job right now."""
        with self._cond:
            self._seen(worker_id)
            job = self._get(job_id)
            if job.status != IN_PROGRESS or job.worker_id != worker_id:
                return False
            if not (isinstance(payload, dict) and "output" in payload):
                payload = {"output": payload}
            job.chunks.append(payload)
            self._cond.notify_all()
            return True

    def finish(self, worker_id: str, job_id: str, payload: Any) -> bool:
        """A worker's result: ``{"output": ...}``, or ``{"error": ...}`` for FAILED.
        False (ignored) unless the worker runs the job right now."""
        with self._cond:
            self._seen(worker_id)
            job = self._get(job_id)
            if job.status != IN_PROGRESS or job.worker_id != worker_id:
                return False
            if not isinstance(payload, dict):
                payload = {"output": payload}
            if payload.get("error"):
                self._finish(job, FAILED, output=payload.get("output"), error=payload["error"])
            else:
                self._finish(job, COMPLETED, output=payload.get("output"))
            return True

    def ping(self, worker_id: str, unhealthy: str | None = None) -> None:
        with self._cond:
            worker = self._seen(worker_id)
            if worker is not None and unhealthy:
                worker.unhealthy = unhealthy

    def wait_stop(self, worker_id: str, wait_s: float) -> None:
        """Hold the SDK's job-stop long-poll until the worker is being stopped or ``wait_s``."""
        deadline = time.monotonic() + wait_s
        with self._cond:
            worker = self._seen(worker_id)
            while worker is not None and self._may_take(worker):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                self._cond.wait(remaining)

    def drain(self, worker_id: str) -> None:
        """Give the worker no more jobs, and answer its pending long-polls now."""
        with self._cond:
            self._drain(worker_id)

    def undrain(self, worker_id: str) -> None:
        """Jobs for the worker again (one the endpoint cannot stop: it was not started here)."""
        with self._cond:
            if worker_id in self._workers:
                self._workers[worker_id].draining = False

    def worker_gone(self, worker_id: str, reason: str) -> tuple[list[str], bool]:
        """The worker's process is gone: its running jobs fail with ``reason``.
        Returns those job ids and whether the worker had ever made a request."""
        with self._cond:
            self._gone.add(worker_id)
            worker = self._workers.pop(worker_id, None)
            if worker is None:
                return [], False
            failed = []
            for jid in sorted(worker.jobs):
                job = self._jobs.get(jid)
                if job is not None and job.status == IN_PROGRESS:
                    self._finish(job, FAILED, error=reason)
                    failed.append(jid)
            self._cond.notify_all()
            return failed, worker.last_seen is not None

    def workers(self) -> dict[str, dict]:
        """Every worker that has made a request (or is being stopped), by id."""
        with self._cond:
            now = self._clock()
            return {w.id: {"jobs": sorted(w.jobs), "draining": w.draining,
                           "unhealthy": w.unhealthy,
                           "seen_ago_s": None if w.last_seen is None else now - w.last_seen}
                    for w in self._workers.values()}

    def silent_workers(self, timeout_s: float) -> list[str]:
        """Workers that made requests once but none for ``timeout_s``."""
        with self._cond:
            now = self._clock()
            return [w.id for w in self._workers.values()
                    if w.last_seen is not None and now - w.last_seen > timeout_s]

    # ------------------------------------------------------------------ time
    def tick(self) -> list[str]:
        """Apply execution timeouts (TIMED_OUT) and TTLs (deleted); the workers to stop."""
        with self._cond:
            now, stop = self._clock(), []
            for job in list(self._jobs.values()):
                if now - job.queued_at >= job.policy.ttl_s:
                    if job.status == IN_QUEUE:
                        self._queue.remove(job.id)
                    elif job.status == IN_PROGRESS:
                        if job.worker_id in self._workers:
                            self._workers[job.worker_id].jobs.discard(job.id)
                        self._drain(job.worker_id)
                        stop.append(job.worker_id)
                    del self._jobs[job.id]
                    self._cond.notify_all()
                elif (job.status == IN_PROGRESS
                      and now - job.started_at >= job.policy.execution_timeout_s):
                    worker = job.worker_id
                    self._finish(job, TIMED_OUT, error=(
                        f"execution timeout: the job ran longer than "
                        f"{job.policy.execution_timeout_s:g} s"))
                    self._drain(worker)
                    stop.append(worker)
            return list(dict.fromkeys(stop))

    def pop_finals(self) -> list[tuple[str, dict]]:
        """(webhook, status body) of the jobs with a webhook that became final since last call."""
        with self._cond:
            finals, self._finals = self._finals, []
            return finals

    def close(self) -> None:
        """Shutting down: no new jobs, no job handed out, every long-poll answered now."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    # ------------------------------------------------------------------ internals
    def _get(self, job_id: str) -> Job:
        job = self._jobs.get(job_id)
        if job is None:
            raise NotFound(f"no job {job_id} (never submitted, or past its TTL)")
        return job

    def _seen(self, worker_id: str) -> WorkerRecord | None:
        if worker_id in self._gone:
            return None
        worker = self._workers.get(worker_id)
        if worker is None:
            worker = self._workers[worker_id] = WorkerRecord(worker_id)
        worker.last_seen = self._clock()
        return worker

    def _may_take(self, worker: WorkerRecord) -> bool:
        return (not self._closed and not worker.draining
                and self._workers.get(worker.id) is worker)

    def _drain(self, worker_id: str | None) -> None:
        if worker_id is None or worker_id in self._gone:
            return
        worker = self._workers.get(worker_id)
        if worker is None:
            worker = self._workers[worker_id] = WorkerRecord(worker_id)
        worker.draining = True
        self._cond.notify_all()

    def _finish(self, job: Job, status: str, *, output: Any = None, error: Any = None) -> None:
        job.status, job.finished_at = status, self._clock()
        if output is not None:
            job.output = output
        if error is not None:
            job.error = error
        if job.worker_id in self._workers:
            self._workers[job.worker_id].jobs.discard(job.id)
        if status == COMPLETED:
            self._counts["completed"] += 1
        elif status in (FAILED, TIMED_OUT):
            self._counts["failed"] += 1
        if job.webhook:
            self._finals.append((job.webhook, job.view(job.finished_at)))
        self._cond.notify_all()
