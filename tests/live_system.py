"""The live system for tests that need it running: the app over real HTTP, a real RQ worker
process, and the local endpoint with real runpod worker processes. The browser tests and
the fault-injection tests share these fixtures (imported by their conftests).

- ``live_endpoint``: ``LocalEndpoint`` with 1 worker process (``TEST_ENDPOINT_WORKERS`` in
  the app's config for more) running the real handler on the app's storage; the app's
  ``RUNPOD_*`` settings point at it.
- ``live_server``: the app served by werkzeug (threaded) on 127.0.0.1 and a free port.
- ``rq_worker``: ``python -m control.cli worker`` in a subprocess with the same database,
  Redis, queue, storage, endpoint, secret and recovery settings as the app; an
  ``RQWorkerProcess`` (``.kill()``, ``.restart()``, ``.tail()``, ``.assert_alive()``).
- ``live_system``: all of them, as a ``LiveSystem`` (``.app``, ``.url``, ``.endpoint``, ``.worker``).
Logs of the worker processes are printed when a test fails.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Settings the worker process must share with the app (control.config.from_env reads these).
SHARED_SETTINGS = ("MONITOR_INTERVAL_SECONDS", "RUNPOD_EXECUTION_TIMEOUT_S", "MAX_RECOVERIES",
                   "RECOVERY_BACKOFF_SECONDS", "STALL_MIN_SECONDS", "STALL_STEP_FACTOR",
                   "STALL_STAGE_SECONDS", "PROVISIONING_TIMEOUT_SECONDS", "SWEEP_INTERVAL_SECONDS",
                   "SWEEP_GRACE_SECONDS", "PUBLIC_BASE_URL", "COMPLETION_WEBHOOK")
REGISTER_S = 120          # how long a started RQ worker may take to register (a deadline only)


# ------------------------------------------------------------------ failure reports
@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the item, so teardowns know whether the test failed."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


def _failed(request) -> bool:
    return any(getattr(getattr(request.node, f"rep_{when}", None), "failed", False)
               for when in ("setup", "call"))


def _tail(path: Path, lines: int = 80) -> str:
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError as exc:
        return f"(no log: {exc})"


@pytest.fixture
def live_app(app):
    """The app the live parts serve: the repo's ``app`` fixture, as the importing directory's
    conftest narrows it (Postgres only, its Redis, its settings)."""
    return app


# ------------------------------------------------------------------ the local endpoint
@pytest.fixture
def live_endpoint(live_app, tmp_path, request):
    """The local RunPod-compatible endpoint, 1 worker process, storage shared with the app."""
    from control.local_endpoint import LocalEndpoint

    storage = live_app.config["STORAGE_ENV"]
    log_dir = tmp_path / "endpoint-logs"
    ep = LocalEndpoint(workers=live_app.config.get("TEST_ENDPOINT_WORKERS", 1), worker_env={
        "STORAGE_BACKEND": storage["STORAGE_BACKEND"],
        "STORAGE_LOCAL_ROOT": storage["STORAGE_LOCAL_ROOT"],
        **live_app.config.get("TEST_WORKER_ENV", {})}, log_dir=str(log_dir))
    ep.start()
    live_app.config.update(RUNPOD_ENDPOINT_BASE_URL=ep.base_url, RUNPOD_ENDPOINT_ID=ep.endpoint_id,
                           RUNPOD_API_KEY="local")
    yield ep
    try:
        if _failed(request):
            for log in sorted(log_dir.glob("*")):
                print(f"\n----- endpoint worker log {log} (tail) -----\n{_tail(log)}")
    finally:
        ep.stop()


# ------------------------------------------------------------------ the HTTP server
class _ServerThread(threading.Thread):
    def __init__(self, app):
        super().__init__(name="live-server", daemon=True)
        from werkzeug.serving import WSGIRequestHandler, make_server

        class Quiet(WSGIRequestHandler):
            def log_request(self, *args, **kwargs):
                pass

        self.server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=Quiet)

    def run(self):
        self.server.serve_forever(poll_interval=0.1)

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        self.join(10)


@pytest.fixture
def live_server(live_app):
    """The app over real HTTP on 127.0.0.1; yields the base URL (no trailing slash)."""
    thread = _ServerThread(live_app)
    thread.start()
    url = f"http://127.0.0.1:{thread.server.server_port}"
    _wait_for_port("127.0.0.1", thread.server.server_port, 10)
    yield url
    thread.stop()


def _wait_for_port(host: str, port: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            socket.create_connection((host, port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


# ------------------------------------------------------------------ the RQ worker process
class RQWorkerProcess:
    """``python -m control.cli worker`` in a process group of its own (its scheduler and work
    horses included), logging to ``log_path``."""

    def __init__(self, app, data_dir: Path, log_path: Path):
        self.env = worker_env(app, data_dir)
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None
        self.name: str | None = None          # its RQ worker name, once registered
        self.starts = 0

    def start(self) -> "RQWorkerProcess":
        from rq import Worker

        from control.services.queue import get_queue, redis_connection
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "control.cli", "worker"], cwd=ROOT,
                                     env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        log.close()
        self.starts += 1
        self.name = None
        queue, conn = get_queue(), redis_connection()
        # A few seconds; ~10 s when another xdist worker keeps the CPU busy (it imports the app).
        deadline = time.monotonic() + REGISTER_S
        while self.name is None:
            self.assert_alive()
            mine = [w for w in Worker.all(connection=conn, queue=queue) if w.pid == self.proc.pid]
            if mine:
                self.name = mine[0].name
            elif time.monotonic() > deadline:
                pytest.fail(f"the RQ worker did not register in {REGISTER_S} s; its log:\n{self.tail()}")
            else:
                time.sleep(0.2)
        return self

    def kill(self) -> None:
        """SIGKILL the worker and everything it started, as a crashed machine would."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(10)

    def stop(self) -> int | None:
        """SIGTERM, as systemd or Kubernetes stop it; its exit code (None: it needed SIGKILL)."""
        if self.proc is not None:
            return _stop_process_group(self.proc)
        return None

    def tail(self, lines: int = 80) -> str:
        return _tail(self.log_path, lines)

    def assert_alive(self) -> None:
        code = self.proc.poll()
        assert code is None, f"the RQ worker exited with {code}; its log:\n{self.tail()}"


def worker_env(app, data_dir: Path) -> dict:
    """The environment of ``pipeline worker`` for this app: the same database, Redis, queue,
    storage, endpoint, secret and recovery settings."""
    cfg = app.config
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("STORAGE_", "SUPABASE_", "RUNPOD_", "DEFAULT_"))}
    env.update({
        "DATABASE_URL": cfg["SQLALCHEMY_DATABASE_URI"],
        "REDIS_URL": cfg["REDIS_URL"],
        "QUEUE_NAME": cfg["QUEUE_NAME"],
        **{k: str(v) for k, v in cfg["STORAGE_ENV"].items()},
        **{k: str(cfg[k]) for k in SHARED_SETTINGS},
        "SECRET_KEY": cfg["SECRET_KEY"],
        "RUNPOD_API_KEY": cfg["RUNPOD_API_KEY"],
        "RUNPOD_ENDPOINT_ID": cfg["RUNPOD_ENDPOINT_ID"],
        "DEFAULT_BASE_MODEL": cfg["DEFAULT_BASE_MODEL"],
        "DEFAULT_METHOD": cfg["DEFAULT_METHOD"],
        "DEFAULT_GPU_TYPE": cfg["DEFAULT_GPU_TYPE"],
        "BRIGHTRUN_DATA_DIR": str(data_dir),
        "PYTHONUNBUFFERED": "1",
    })
    if cfg.get("RUNPOD_ENDPOINT_BASE_URL"):
        env["RUNPOD_ENDPOINT_BASE_URL"] = cfg["RUNPOD_ENDPOINT_BASE_URL"]
    return env


@pytest.fixture
def rq_worker(live_app, live_endpoint, tmp_path, request):
    """The RQ worker process, so dispatch and monitor tasks run while the test watches."""
    worker = RQWorkerProcess(live_app, tmp_path / "worker-data", tmp_path / "rq-worker.log").start()
    try:
        yield worker
    finally:
        if _failed(request):
            print(f"\n----- RQ worker log {worker.log_path} (tail) -----\n{worker.tail()}")
        worker.stop()


def _stop_process_group(proc: subprocess.Popen, grace_s: float = 5) -> int | None:
    """SIGTERM the worker (RQ's warm shutdown: it finishes the task in hand), SIGKILL it after
    ``grace_s``; then the same for what is left of its process group (its scheduler process,
    a work horse), which the worker leads (``start_new_session``). Returns the worker's exit
    code after SIGTERM, None if it had to be killed."""
    code = proc.poll()
    if code is None:
        proc.terminate()
        try:
            code = proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    for sig, wait_s in ((signal.SIGTERM, 5), (signal.SIGKILL, 2)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return code                            # the group is empty
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            try:
                os.killpg(proc.pid, 0)
            except ProcessLookupError:
                return code
            time.sleep(0.1)
    return code


@dataclass
class LiveSystem:
    app: object
    url: str
    endpoint: object
    worker: RQWorkerProcess


@pytest.fixture
def live_system(live_app, live_server, live_endpoint, rq_worker):
    """App over HTTP + local endpoint (1 training worker) + RQ worker process."""
    return LiveSystem(live_app, live_server, live_endpoint, rq_worker)


