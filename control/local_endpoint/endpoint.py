"""``LocalEndpoint``: the server, its worker processes and the supervisor that ties them.

The supervisor thread, every ``tick_s``:

* reaps exited workers; a job a lost worker was running becomes FAILED ("worker lost: ...")
  and a replacement starts, so the pool stays at ``workers`` processes (a worker that dies
  before its first request restarts with a back-off: a broken command does not spin);
* SIGKILLs workers still alive ``stop_grace_s`` after their SIGTERM;
* applies execution timeouts (TIMED_OUT, worker stopped) and TTLs (job deleted);
* kills workers that stopped making requests and heartbeats for ``heartbeat_timeout_s``
  (treated as lost);
* sends webhooks.
"""
from __future__ import annotations

import datetime as dt
import logging
import os
import re
import signal
import sys
import threading
import time
from typing import Mapping, Sequence

from werkzeug.serving import WSGIRequestHandler, make_server

from . import webhooks
from .job_store import JobStore
from .pool import WorkerPool, WorkerProcess
from .server import count_states, create_app, worker_state

log = logging.getLogger(__name__)

# Overridable by os.environ and worker_env; the RUNPOD_WEBHOOK_* variables, RUNPOD_POD_ID and
# RUNPOD_AI_API_KEY are always set by the endpoint.
WORKER_ENV_DEFAULTS = {
    "RUNPOD_SKIP_AUTO_SYSTEM_CHECKS": "true",   # no GPU/disk/memory fitness checks at start
    "RUNPOD_SKIP_GPU_CHECK": "true",
    "RUNPOD_PING_INTERVAL": "2000",             # ms; the SDK sleeps int(ms) // 1000 s
    "RUNPOD_LOG_LEVEL": "INFO",                 # the SDK's default, DEBUG, logs every poll
    "PYTHONUNBUFFERED": "1",
}
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_QUICK_CRASH_S = 10.0


def default_worker_command() -> list[str]:
    """The real training handler."""
    return [sys.executable, "-u", "-m", "handler.handler"]


class LocalEndpoint:
    """A RunPod Serverless endpoint on this machine: the HTTP API for ``runpod.Endpoint`` and
    the job-take protocol for ``runpod.serverless.start`` workers, which it runs itself.

    >>> ep = LocalEndpoint(workers=0).start()        # doctest: +SKIP
    >>> runpod.endpoint_url_base = ep.base_url       # doctest: +SKIP
    >>> runpod.Endpoint(ep.endpoint_id, api_key="any").run({"n": 1})  # doctest: +SKIP
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, workers: int = 1,
                 endpoint_id: str = "local", api_key: str | None = None,
                 worker_command: Sequence[str] | None = None,
                 worker_env: Mapping[str, str] | None = None,
                 log_dir: str | os.PathLike | None = None, *,
                 worker_cwd: str | None = None, poll_s: float = 5.0,
                 stream_wait_s: float = 2.0, runsync_wait_s: float = 90.0,
                 stop_grace_s: float = 30.0, heartbeat_timeout_s: float = 30.0,
                 tick_s: float = 0.1):
        if not _ID.match(endpoint_id or ""):
            raise ValueError(f"endpoint_id {endpoint_id!r}: use letters, digits, '_', '-', '.'")
        if workers < 0:
            raise ValueError("workers must be 0 or more")
        self.host, self.endpoint_id, self.api_key = host, endpoint_id, api_key or None
        self.size = workers
        self.worker_command = list(worker_command or default_worker_command())
        self.extra_env = dict(worker_env or {})
        self.log_dir = log_dir
        self.stop_grace_s = stop_grace_s
        self.heartbeat_timeout_s = heartbeat_timeout_s
        self.tick_s = tick_s
        self.store = JobStore()
        self.app = create_app(self.store, endpoint_id=endpoint_id, api_key=self.api_key,
                              stop_worker=lambda wid: self.stop_worker(wid, "job cancelled"),
                              describe_workers=self._describe_workers, poll_s=poll_s,
                              stream_wait_s=stream_wait_s, runsync_wait_s=runsync_wait_s)
        self.pool = WorkerPool(self.worker_command, self.worker_env, log_dir, worker_cwd,
                               id_prefix=endpoint_id)
        self._requested_port = port
        self._server = None
        self._server_thread: threading.Thread | None = None
        self._supervisor: threading.Thread | None = None
        self._silence_s = heartbeat_timeout_s
        self._stop = threading.Event()
        self._state = "new"          # new -> running -> stopped
        self._lock = threading.Lock()
        self._crashes = 0
        self._next_spawn = 0.0

    # ------------------------------------------------------------------ addresses
    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the endpoint is not started")
        return self._server.server_port

    @property
    def url(self) -> str:
        """``http://host:port``, with a wildcard host replaced by loopback."""
        host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(self.host, self.host)
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        """The value for ``RUNPOD_ENDPOINT_BASE_URL`` / ``runpod.endpoint_url_base``."""
        return f"{self.url}/v2"

    def worker_env(self, worker_id: str) -> dict:
        """The environment of a worker process (also how to point an outside worker here)."""
        api = f"{self.base_url}/{self.endpoint_id}"
        env = {**WORKER_ENV_DEFAULTS, **os.environ, **self.extra_env}
        env.update({
            # The SDK appends "&job_in_progress=…", "&isStream=…": each URL needs its "?".
            "RUNPOD_WEBHOOK_GET_JOB": f"{api}/job-take/$ID?gpu=local",
            "RUNPOD_WEBHOOK_POST_OUTPUT": f"{api}/job-done/$RUNPOD_POD_ID/$ID?gpu=local",
            "RUNPOD_WEBHOOK_POST_STREAM": f"{api}/job-stream/$RUNPOD_POD_ID/$ID?gpu=local",
            "RUNPOD_WEBHOOK_PING": f"{api}/ping/$RUNPOD_POD_ID?gpu=local",
            "RUNPOD_POD_ID": worker_id,
            "RUNPOD_AI_API_KEY": self.api_key or "local",
        })
        return env

    # ------------------------------------------------------------------ life cycle
    def start(self) -> "LocalEndpoint":
        with self._lock:
            if self._state != "new":
                raise RuntimeError(f"the endpoint is {self._state}; make a new one")
            self._server = make_server(self.host, self._requested_port, self.app, threaded=True,
                                       request_handler=_QuietRequestHandler)
            self._state = "running"
        self._silence_s = self._heartbeat_timeout()
        self._server_thread = self._start_thread(self._server.serve_forever, "server")
        try:
            for _ in range(self.size):
                self.pool.spawn()
        except OSError:
            self.stop()
            raise
        self._supervisor = self._start_thread(self._supervise, "supervisor")
        log.info("local endpoint %r at %s with %d worker(s)", self.endpoint_id, self.base_url,
                 self.size)
        return self

    def stop(self, grace_s: float | None = None) -> None:
        """SIGTERM the workers, wait up to ``grace_s`` (default ``stop_grace_s``), SIGKILL the
        rest, then stop the server. Idempotent."""
        with self._lock:
            if self._state == "new":
                self._state = "stopped"
            if self._state != "running":
                return
            self._state = "stopping"
        self._stop.set()
        if self._supervisor is not None:
            self._supervisor.join()
        self.store.close()
        for proc in self.pool.shutdown(self.stop_grace_s if grace_s is None else grace_s):
            self._on_exit(proc)
        self._server.shutdown()
        self._server.server_close()
        self._server_thread.join(timeout=5)
        with self._lock:
            self._state = "stopped"
        log.info("local endpoint %r stopped", self.endpoint_id)

    def __enter__(self) -> "LocalEndpoint":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.base_url if self._server is not None else "not started"
        return f"<LocalEndpoint {self.endpoint_id!r} {where} workers={self.size} {self._state}>"

    # ------------------------------------------------------------------ workers
    def stop_worker(self, worker_id: str, reason: str = "asked to stop") -> None:
        """No more jobs for the worker; SIGTERM it, SIGKILL after ``stop_grace_s``.
        Once it has exited a replacement starts. A worker this endpoint did not start is
        told nothing (its results for a cancelled or timed-out job are ignored)."""
        self.store.drain(worker_id)
        if not self.pool.terminate(worker_id, self.stop_grace_s, reason):
            if self.pool.get(worker_id) is None:     # a worker started elsewhere
                self.store.undrain(worker_id)

    @property
    def workers(self) -> list[dict]:
        """The ``pool`` list of ``/health``."""
        return self._describe_workers()["pool"]

    def health(self) -> dict:
        """The ``/health`` body."""
        return {"jobs": self.store.job_counts(), **self._describe_workers()}

    def wait_idle(self, count: int | None = None, timeout_s: float = 60.0) -> list[dict]:
        """Wait until ``count`` (default: all) workers are idle; the pool list then."""
        count = self.size if count is None else count
        deadline = time.monotonic() + timeout_s
        while True:
            pool = self.workers
            if sum(1 for w in pool if w["state"] == "idle") >= count:
                return pool
            if time.monotonic() > deadline:
                raise TimeoutError(f"{count} idle worker(s) wanted, after {timeout_s:g} s: {pool}")
            time.sleep(0.05)

    def _describe_workers(self) -> dict:
        infos = self.store.workers()
        pool = []
        for proc in self.pool.processes():
            info = infos.pop(proc.id, None)
            alive = not proc.has_exited()
            if not alive:
                state = "exited"
            elif proc.stop_reason is not None:
                state = "stopping"
            else:
                state = worker_state(info)
            pool.append(_entry(proc.id, info, state, pid=proc.pid, alive=alive,
                               started=proc.started_at, log_path=proc.log_path))
        for worker_id, info in sorted(infos.items()):      # workers started elsewhere
            pool.append(_entry(worker_id, info, worker_state(info)))
        return {"workers": count_states(pool), "pool": pool}

    # ------------------------------------------------------------------ supervisor
    def _start_thread(self, target, name: str) -> threading.Thread:
        thread = threading.Thread(target=target, daemon=True,
                                  name=f"local-endpoint-{self.endpoint_id}-{name}")
        thread.start()
        return thread

    def _supervise(self) -> None:
        while not self._stop.wait(self.tick_s):
            try:
                self._tick()
            except Exception:  # noqa: BLE001 - the supervisor must outlive any one bug
                log.exception("local endpoint supervisor")

    def _tick(self) -> None:
        for proc in self.pool.reap():
            self._on_exit(proc)
        self.pool.kill_overdue()
        for worker_id in self.store.tick():
            self.stop_worker(worker_id, "its job timed out or expired")
        for worker_id in self.store.silent_workers(self._silence_s):
            reason = f"stopped sending requests and heartbeats for {self._silence_s:g} s"
            if not self.pool.kill(worker_id, reason):
                self.store.worker_gone(worker_id, f"worker lost: worker {worker_id} {reason}")
        for url, body in self.store.pop_finals():
            webhooks.send(url, body)
        self._replenish()

    def _heartbeat_timeout(self) -> float:
        """At least three ping intervals, whatever RUNPOD_PING_INTERVAL the workers got."""
        try:
            interval_s = int(self.worker_env("-")["RUNPOD_PING_INTERVAL"]) / 1000
        except ValueError:
            interval_s = 10.0
        return max(self.heartbeat_timeout_s, 3 * interval_s + 5)

    def _on_exit(self, proc: WorkerProcess) -> None:
        how = proc.describe_exit()
        if proc.stop_reason:
            how += f" after being stopped ({proc.stop_reason})"
        reason = f"worker lost: worker {proc.id} (pid {proc.pid}) {how} while running this job"
        failed, was_seen = self.store.worker_gone(proc.id, reason)
        lived = time.monotonic() - proc.started_mono
        where = f"; its log: {proc.log_path}" if proc.log_path else ""
        if failed:
            log.warning("worker %s %s; job(s) %s failed%s", proc.id, how, ", ".join(failed), where)
        elif proc.stop_reason is None:
            log.warning("worker %s %s%s", proc.id, how, where)
        else:
            log.info("worker %s %s", proc.id, how)
        if was_seen:
            self._crashes = 0
        elif proc.stop_reason is None and lived < _QUICK_CRASH_S:
            self._crashes += 1
            delay = min(30.0, 0.5 * 2 ** (self._crashes - 1))
            self._next_spawn = time.monotonic() + delay
            log.error("worker %s died %.1f s after starting, before its first request; "
                      "restarting in %g s%s", proc.id, lived, delay, where)

    def _replenish(self) -> None:
        if self._stop.is_set() or time.monotonic() < self._next_spawn:
            return
        for _ in range(self.size - len(self.pool)):
            try:
                self.pool.spawn()
            except OSError as exc:
                self._crashes += 1
                self._next_spawn = time.monotonic() + min(30.0, 0.5 * 2 ** (self._crashes - 1))
                log.error("cannot start a worker (%s): %s", self.worker_command, exc)
                return


def _entry(worker_id: str, info: dict | None, state: str, *, pid: int | None = None,
           alive: bool | None = None, started: float | None = None,
           log_path: str | None = None) -> dict:
    seen = None if info is None or info["seen_ago_s"] is None else round(info["seen_ago_s"], 3)
    return {
        "id": worker_id, "pid": pid, "alive": alive, "state": state,
        "jobId": (info["jobs"] or [None])[0] if info else None,
        "startedAt": None if started is None else
        dt.datetime.fromtimestamp(started, dt.timezone.utc).isoformat(timespec="seconds"),
        "lastSeenSecondsAgo": seen,
        "log": log_path,
    }


class _QuietRequestHandler(WSGIRequestHandler):
    """Workers poll all the time: request lines go to DEBUG, not to the terminal."""

    def log_request(self, code="-", size="-") -> None:
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s %s", self.requestline, code)


def serve(host: str = "127.0.0.1", port: int = 8090, workers: int = 1,
          endpoint_id: str = "local", api_key: str | None = None, **options) -> None:
    """Run a ``LocalEndpoint`` until SIGINT or SIGTERM, then stop everything cleanly."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    stop = threading.Event()

    def on_signal(signum, _frame) -> None:
        log.info("%s: stopping", signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    endpoint = LocalEndpoint(host, port, workers, endpoint_id, api_key, **options)
    try:
        endpoint.start()
        print(f"local RunPod endpoint {endpoint_id!r} with {workers} worker(s)\n"
              f"  RUNPOD_ENDPOINT_BASE_URL={endpoint.base_url}\n"
              f"  RUNPOD_ENDPOINT_ID={endpoint_id}", flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        endpoint.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
