"""Fault injection against the whole running system (``tests/live_system.py``) on Postgres,
with a Redis server of the tests' own (so it can be restarted) and recovery settings
scaled down to seconds.

- ``redis_server``: ``redis-server`` on a free port, no persistence; ``.restart()`` brings it
  back empty, as a Redis restart without persistence does.
- ``app``: Postgres, that Redis, fast monitor and sweep, short recovery backoff.
- ``reference_adapter(job)``: the adapter an uninterrupted run of the same job input trains,
  computed in this process with the recipe and cached by the input's fingerprint.
"""
from __future__ import annotations

import shutil
import socket
import subprocess
import time

import pytest

from tests.live_system import (live_app, live_endpoint, live_server, live_system,  # noqa: F401
                               pytest_runtest_makereport, rq_worker)

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
FAST = {
    "MONITOR_INTERVAL_SECONDS": 0.5,
    "SWEEP_INTERVAL_SECONDS": 1,
    "SWEEP_GRACE_SECONDS": 3,
    "RECOVERY_BACKOFF_SECONDS": 0.2,
    "MAX_RECOVERIES": 10,
    "STALL_MIN_SECONDS": 3,          # silent for max(3 s, 10 steps) while training: stalled
    "STALL_STAGE_SECONDS": 120,
}
# The handler's storage patience: an outage longer than this fails the attempt (and the
# control plane recovers the job); and it looks for checkpoint requests every half second,
# not every 5 s, so a request lands well inside a 40-step run.
WORKER_ENV = {"STORAGE_RETRY_SECONDS": "2", "CONTROL_POLL_SECONDS": "0.5"}


class RedisServer:
    def __init__(self, tmp_path):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.dir = tmp_path
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc = None
        self.restarts = 0

    def start(self) -> "RedisServer":
        self.proc = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.dir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30             # well under a second, unless the CPU is busy
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def restart(self, down_s: float = 1.0) -> None:
        self.stop()
        time.sleep(down_s)
        self.start()
        self.restarts += 1


@pytest.fixture
def redis_server(tmp_path):
    server = RedisServer(tmp_path).start()
    yield server
    server.stop()


@pytest.fixture(params=["postgres"])
def app(redis_server, app):          # redis_server first: it must outlive the app's teardown
    from control.extensions import db
    assert db.engine.dialect.name == "postgresql", db.engine.url
    app.extensions.pop("brightrun.redis", None)
    # Two endpoint workers: a lost attempt's successor starts on the idle one, as on an endpoint
    # with more than one worker (and the killed one's replacement starts meanwhile).
    app.config.update(FAST, REDIS_URL=redis_server.url, TEST_WORKER_ENV=WORKER_ENV, TEST_ENDPOINT_WORKERS=2)
    return app


_references: dict[str, dict] = {}


@pytest.fixture
def reference_adapter(tmp_path_factory):
    """``reference(job)`` -> the tensors an uninterrupted run of ``job``'s input trains."""
    def reference(job) -> dict:
        from safetensors.torch import load_file

        from control.services.job_input import job_input as input_of
        from control.services.storage import get_storage
        from handler.recipe import Recipe
        from shared.job_input import JobInput
        from shared.storage import LocalStorage

        job_input = input_of(job, 1)
        key = job_input.fingerprint()
        if key not in _references:
            store = LocalStorage(tmp_path_factory.mktemp("reference"))
            data = get_storage().get_bytes(job_input.dataset.key)
            store.put_bytes(job_input.dataset.key, data)
            raw = job_input.model_dump(mode="json")
            raw.update(job_id="reference", checkpoint={**raw["checkpoint"], "prefix": "reference"})
            for _ in Recipe(JobInput.parse(raw), store).run():
                pass
            path = tmp_path_factory.mktemp("reference-adapter") / "adapter_model.safetensors"
            store.get_file("reference/adapter/adapter_model.safetensors", path)
            _references[key] = load_file(str(path))
        return _references[key]
    return reference
