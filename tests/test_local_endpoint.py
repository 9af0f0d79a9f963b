"""The local endpoint (``control.local_endpoint``), spoken to by the runpod SDK's own client
(``runpod.Endpoint``, ``runpod.AsyncioEndpoint``) and served by the SDK's own worker loop
(``runpod.serverless.start`` in real subprocesses: ``tests/workers/``).

First the state machine alone (no HTTP), then the routes through Flask's test client, then
real endpoints with real worker processes (module-scoped: worker start-up costs ~2 s).
"""
from __future__ import annotations

import asyncio
import doctest
import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

runpod = pytest.importorskip("runpod")

from control.local_endpoint import LocalEndpoint  # noqa: E402
from control.local_endpoint.job import (  # noqa: E402
    CANCELLED, COMPLETED, FAILED, IN_PROGRESS, IN_QUEUE, TIMED_OUT, Policy)
from control.local_endpoint.job_errors import BadRequest, Conflict, NotFound  # noqa: E402
from control.local_endpoint.job_store import JobStore  # noqa: E402
from control.local_endpoint.server import create_app  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
WORKERS = Path(__file__).parent / "workers"
FAST_WORKER_ENV = {"RUNPOD_PING_INTERVAL": "1000"}
# How long to wait for what takes a second or two on an idle machine (a worker starting, a job
# being taken, a process exiting): generous, since under ``make test`` another xdist worker
# keeps both cores busy. It bounds waits for conditions only; passing never waits it out.
PATIENCE_S = 60.0


def worker(name: str) -> list[str]:
    return [sys.executable, "-u", str(WORKERS / f"{name}_worker.py")]


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


# ============================================================ the state machine, no HTTP
def test_a_job_goes_through_queue_worker_stream_and_result():
    store = JobStore()
    job = store.submit({"n": 1})
    assert job["status"] == IN_QUEUE and store.status(job["id"])["status"] == IN_QUEUE
    assert store.take("w1", wait_s=0) == [{"id": job["id"], "input": {"n": 1}}]
    assert store.take("w2", wait_s=0) == []
    assert store.status(job["id"])["workerId"] == "w1"
    assert store.add_chunk("w1", job["id"], {"output": 1})
    assert store.add_chunk("w1", job["id"], {"output": 2})
    assert not store.add_chunk("w2", job["id"], {"output": "not its job"})
    assert store.read_stream(job["id"])["stream"] == [{"output": 1}, {"output": 2}]
    assert store.read_stream(job["id"])["stream"] == []            # read-once
    assert store.finish("w1", job["id"], {"output": []})
    status = store.status(job["id"])
    assert status["status"] == COMPLETED and status["output"] == []
    assert not store.finish("w1", job["id"], {"output": "again"})  # final: ignored
    assert store.job_counts() == {"completed": 1, "failed": 0, "inProgress": 0,
                                  "inQueue": 0, "retried": 0}


def test_long_polls_wake_up_on_change():
    store = JobStore()
    started = time.monotonic()
    assert store.take("w1", wait_s=0.2) == []
    assert time.monotonic() - started >= 0.19
    # Each wait could last 20 s; woken by the change 0.1 s in, it ends well before (a loaded
    # machine may be slow to run the timer thread, hence 10 s, not 0.1 s).
    threading.Timer(0.1, lambda: store.submit({})).start()
    started = time.monotonic()
    [taken] = store.take("w1", wait_s=20)
    assert time.monotonic() - started < 10
    job_id = taken["id"]
    threading.Timer(0.1, lambda: store.add_chunk("w1", job_id, {"output": "x"})).start()
    started = time.monotonic()
    assert store.read_stream(job_id, wait_s=20)["stream"] == [{"output": "x"}]
    assert time.monotonic() - started < 10
    threading.Timer(0.1, lambda: store.drain("w1")).start()
    started = time.monotonic()
    store.wait_stop("w1", 20)                                      # the SDK's stop channel
    assert time.monotonic() - started < 10


def test_an_error_result_fails_the_job():
    store = JobStore()
    job_id = store.submit({})["id"]
    store.take("w1")
    assert store.finish("w1", job_id, {"error": "boom"})
    assert store.status(job_id) | {"delayTime": 0, "executionTime": 0} == {
        "id": job_id, "status": FAILED, "error": "boom", "workerId": "w1",
        "delayTime": 0, "executionTime": 0}


def test_cancel_queued_running_and_final_jobs():
    store = JobStore()
    queued, running = store.submit({})["id"], store.submit({})["id"]
    store.take("w1")                                      # takes `queued` (FIFO)
    queued, running = running, queued
    assert store.cancel(queued) == ({"id": queued, "status": CANCELLED}, None)
    assert store.take("w2", wait_s=0) == []               # it left the queue
    assert store.cancel(running) == ({"id": running, "status": CANCELLED}, "w1")
    assert not store.add_chunk("w1", running, {"output": "late"})      # ignored
    assert not store.finish("w1", running, {"output": "late"})
    assert store.status(running)["status"] == CANCELLED
    assert store.workers()["w1"]["draining"]
    store.submit({})
    assert store.take("w1", wait_s=0) == []               # a stopping worker gets no job
    done = store.take("w2")[0]["id"]
    store.finish("w2", done, {"output": 1})
    assert store.cancel(done) == ({"id": done, "status": COMPLETED}, None)


def test_execution_timeout_and_ttl():
    clock = Clock()
    store = JobStore(clock=clock)
    slow = store.submit({}, Policy.parse({"executionTimeout": 2000}))["id"]
    short = store.submit({}, Policy.parse({"ttl": 5000}))["id"]
    store.take("w1")
    clock.now += 1
    assert store.tick() == []
    clock.now += 1.5
    assert store.tick() == ["w1"]                         # the worker to stop
    status = store.status(slow)
    assert status["status"] == TIMED_OUT and "execution timeout" in status["error"]
    assert status["executionTime"] == 2500
    assert store.status(short)["status"] == IN_QUEUE
    clock.now += 3
    store.tick()
    with pytest.raises(NotFound):
        store.status(short)                               # past its TTL: gone
    assert store.take("w2", wait_s=0) == []
    assert store.job_counts()["failed"] == 1


def test_retry_and_purge():
    store = JobStore()
    job_id = store.submit({"a": 1})["id"]
    store.take("w1")
    store.finish("w1", job_id, {"error": "x"})
    assert store.retry(job_id) == {"id": job_id, "status": IN_QUEUE}
    status = store.status(job_id)
    assert "error" not in status and status["retries"] == 1
    assert store.take("w2") == [{"id": job_id, "input": {"a": 1}}]
    with pytest.raises(Conflict):
        store.retry(job_id)                               # IN_PROGRESS
    for _ in range(3):
        store.submit({})
    assert store.purge() == 3
    assert store.job_counts()["inQueue"] == 0 and store.job_counts()["retried"] == 1


def test_a_lost_worker_fails_its_job_and_takes_no_more():
    store = JobStore()
    job_id = store.submit({})["id"]
    store.take("w1")
    assert store.worker_gone("w1", "worker lost: killed") == ([job_id], True)
    assert store.status(job_id)["error"] == "worker lost: killed"
    store.submit({})
    started = time.monotonic()
    assert store.take("w1", wait_s=0.1) == []            # no job, and no busy loop
    assert time.monotonic() - started >= 0.09
    assert "w1" not in store.workers()


def test_a_worker_asking_for_work_without_reporting_a_result_loses_its_job():
    store = JobStore()
    job_id = store.submit({})["id"]
    store.take("w1")
    assert store.take("w1", wait_s=0, job_in_progress=True) == []
    assert store.status(job_id)["status"] == IN_PROGRESS
    store.take("w1", wait_s=0, job_in_progress=False)
    status = store.status(job_id)
    assert status["status"] == FAILED and "without reporting a result" in status["error"]


def test_a_webhook_gets_the_final_status():
    from control.local_endpoint import webhooks

    received = []

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.handle_request, daemon=True).start()
    store = JobStore()
    job_id = store.submit({}, webhook=f"http://127.0.0.1:{server.server_port}/hook")["id"]
    store.take("w1")
    store.finish("w1", job_id, {"output": {"ok": True}})
    [(url, body)] = store.pop_finals()
    assert store.pop_finals() == []
    webhooks.send(url, body).join(10)
    server.server_close()
    assert received == [body] and body["status"] == COMPLETED and body["output"] == {"ok": True}


def test_doctests():
    from control.local_endpoint import job

    assert doctest.testmod(job).failed == 0


def test_silent_workers():
    clock = Clock()
    store = JobStore(clock=clock)
    store.ping("w1")
    clock.now += 20
    store.ping("w2")
    assert store.silent_workers(10) == ["w1"]


@pytest.mark.parametrize("policy", ["x", {"ttl": -1}, {"executionTimeout": "5"},
                                    {"ttl": True}, {"ttl": float("inf")}])
def test_bad_policies_are_refused(policy):
    with pytest.raises(BadRequest):
        Policy.parse(policy)


# ============================================================ the routes, no processes
@pytest.fixture
def routes():
    store = JobStore()
    stopped = []
    app = create_app(store, endpoint_id="local", stop_worker=stopped.append, poll_s=0.05,
                     stream_wait_s=0.05)
    client = app.test_client()
    client.store, client.stopped = store, stopped
    return client


@pytest.mark.parametrize("method, path, body, status", [
    ("post", "/v2/local/run", "not json", 400),
    ("post", "/v2/local/run", "", 400),
    ("post", "/v2/local/run", "[1]", 400),
    ("post", "/v2/local/run", '{"inputs": {}}', 400),
    ("post", "/v2/local/run", '{"input": 3}', 400),
    ("post", "/v2/local/run", '{"input": {}, "policy": {"ttl": "soon"}}', 400),
    ("post", "/v2/local/run", '{"input": {}, "webhook": "ftp://x"}', 400),
    ("post", "/v2/local/runsync?wait=abc", '{"input": {}}', 400),
    ("get", "/v2/local/status/nope", None, 404),
    ("get", "/v2/local/stream/nope", None, 404),
    ("post", "/v2/local/cancel/nope", None, 404),
    ("post", "/v2/local/retry/nope", None, 404),
    ("get", "/v2/other/health", None, 404),
    ("get", "/v2/local/nowhere", None, 404),
    ("get", "/v2/local/run", None, 405),
    ("post", "/v2/local/job-done/w1/nope", '{"output": 1}', 404),
    ("post", "/v2/local/job-stream/w1/nope", "{bad", 400),
    ("get", "/v2/local/job-take-batch/w1?batch_size=0", None, 400),
])
def test_bad_requests_get_a_json_4xx(routes, method, path, body, status):
    response = getattr(routes, method)(path, data=body, content_type="application/json")
    assert response.status_code == status
    assert isinstance(response.get_json()["error"], str) and response.get_json()["error"]


def test_the_worker_protocol_over_http(routes):
    """As the SDK worker sends it: long-poll, 204, JSON bodies labelled form-urlencoded."""
    form = "application/x-www-form-urlencoded"
    assert routes.get("/v2/local/job-take/w1?gpu=local&job_in_progress=0").status_code == 204
    job_id = routes.post("/v2/local/run", json={"input": {"x": 1}}).get_json()["id"]
    taken = routes.get("/v2/local/job-take/w1?gpu=local&job_in_progress=0")
    assert taken.status_code == 200 and taken.get_json() == {"id": job_id, "input": {"x": 1}}
    reply = routes.post(f"/v2/local/job-stream/w1/{job_id}?gpu=local&isStream=false",
                      data='{"output": {"i": 0}}', content_type=form)
    assert reply.get_json() == {"accepted": True}
    assert routes.get("/v2/local/ping/w1?gpu=local&job_id=" + job_id).status_code == 200
    assert routes.get("/v2/local/job-stop/w1?gpu=local").status_code == 204
    reply = routes.post(f"/v2/local/job-done/w1/{job_id}?gpu=local&isStream=true",
                      data='{"output": []}', content_type=form)
    assert reply.get_json() == {"accepted": True}
    assert routes.get(f"/v2/local/stream/{job_id}").get_json() == {
        "id": job_id, "status": COMPLETED, "stream": [{"output": {"i": 0}}]}
    assert routes.post(f"/v2/local/retry/{job_id}").status_code == 409
    batch = [routes.post("/v2/local/run", json={"input": {}}).get_json()["id"] for _ in range(3)]
    taken = routes.get("/v2/local/job-take-batch/w2?gpu=local&batch_size=2&job_in_progress=0")
    assert [j["id"] for j in taken.get_json()] == batch[:2]
    assert routes.post(f"/v2/local/cancel/{batch[0]}").get_json()["status"] == CANCELLED
    assert routes.stopped == ["w2"]                          # its worker is to be stopped
    assert routes.post("/v2/local/purge-queue").get_json() == {"removed": 1,
                                                             "status": "completed"}
    health = routes.get("/v2/local/health").get_json()
    assert health["jobs"] == {"completed": 1, "failed": 0, "inProgress": 1, "inQueue": 0,
                              "retried": 0}
    assert {w["id"]: w["state"] for w in health["pool"]} == {"w1": "idle", "w2": "stopping"}


def test_an_unhealthy_ping_shows_in_health(routes):
    routes.get("/v2/local/ping/w1?status=unhealthy&check=gpu&reason=no+cuda")
    health = routes.get("/v2/local/health").get_json()
    assert health["workers"]["unhealthy"] == 1 and health["pool"][0]["state"] == "unhealthy"


def test_an_outside_worker_is_served_and_not_stopped():
    """``workers=0``: a worker started elsewhere (with ``worker_env``) is served; cancelling
    its job cannot stop it, so it keeps getting jobs."""
    import requests

    with LocalEndpoint(workers=0, endpoint_id="outside", poll_s=0.1, tick_s=0.02) as ep:
        env = ep.worker_env("ext-1")
        take = env["RUNPOD_WEBHOOK_GET_JOB"].replace("$ID", "ext-1") + "&job_in_progress=0"
        assert take.startswith(ep.base_url + "/outside/job-take/ext-1?")
        assert env["RUNPOD_POD_ID"] == "ext-1" and env["RUNPOD_AI_API_KEY"] == "local"
        assert env["RUNPOD_SKIP_GPU_CHECK"] == "true"
        api = f"{ep.base_url}/outside"
        first = requests.post(f"{api}/run", json={"input": {"n": 1}}, timeout=5).json()["id"]
        assert requests.get(take, timeout=5).json() == {"id": first, "input": {"n": 1}}
        [entry] = ep.health()["pool"]
        assert entry["id"] == "ext-1" and entry["pid"] is None and entry["state"] == "running"
        assert requests.post(f"{api}/cancel/{first}", timeout=5).json()["status"] == CANCELLED
        second = requests.post(f"{api}/run", json={"input": {}}, timeout=5).json()["id"]
        assert requests.get(take, timeout=5).json()["id"] == second
    with pytest.raises(ValueError):
        LocalEndpoint(endpoint_id="no/slashes")


# ============================================================ real workers
@pytest.fixture(scope="module")
def endpoint(tmp_path_factory):
    marks = tmp_path_factory.mktemp("sigterm-marks")
    ep = LocalEndpoint(workers=2, worker_command=worker("counting"),
                       worker_env={**FAST_WORKER_ENV, "COUNTER_MARK_DIR": str(marks)},
                       log_dir=tmp_path_factory.mktemp("worker-logs"),
                       poll_s=2.0, stream_wait_s=0.5, stop_grace_s=5.0)
    ep.marks = marks
    with ep:
        yield ep


@pytest.fixture
def client(endpoint):
    """``runpod.Endpoint`` on the endpoint, once both workers are idle."""
    endpoint.wait_idle(timeout_s=PATIENCE_S)
    saved = runpod.endpoint_url_base
    runpod.endpoint_url_base = endpoint.base_url
    try:
        yield runpod.Endpoint(endpoint.endpoint_id, api_key="anything")
    finally:
        runpod.endpoint_url_base = saved


def status_of(client, job_id: str) -> dict:
    return client.rp_client.get(f"{client.endpoint_id}/status/{job_id}")


def stream_of(client, job_id: str) -> dict:
    return client.rp_client.get(f"{client.endpoint_id}/stream/{job_id}")


def wait_for(client, job_id: str, *statuses: str, timeout: float = PATIENCE_S) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        body = status_of(client, job_id)
        if body["status"] in statuses:
            return body
        assert time.monotonic() < deadline, f"still {body} after {timeout} s"
        time.sleep(0.05)


def worker_running(client, job_id: str, timeout: float = PATIENCE_S) -> dict:
    """The ``/health`` pool entry of the worker running the job."""
    deadline = time.monotonic() + timeout
    while True:
        for entry in client.health()["pool"]:
            if entry["jobId"] == job_id:
                return entry
        assert time.monotonic() < deadline, f"no worker runs {job_id}"
        time.sleep(0.05)


def first_chunks(client, job_id: str, timeout: float = PATIENCE_S) -> list:
    """The stream's first chunks, once the handler has yielded one: it is really running
    (the SDK takes a job, and shows as its worker's ``jobId``, before calling the handler;
    on a loaded machine, seconds before)."""
    deadline = time.monotonic() + timeout
    while True:
        body = stream_of(client, job_id)
        if body["stream"]:
            return body["stream"]
        assert body["status"] == IN_PROGRESS and time.monotonic() < deadline, \
            f"no chunk from {job_id} after {timeout} s: {body}"


def group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes of a process group, from /proc."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(stat.parent.name))
    return members


def wait_gone(pid: int, timeout: float = PATIENCE_S) -> None:
    """Until the process group ``pid`` led is empty (the SDK's heartbeat process included)."""
    deadline = time.monotonic() + timeout
    while group_members(pid):
        assert time.monotonic() < deadline, f"process group {pid}: {group_members(pid)}"
        time.sleep(0.05)


@pytest.mark.slow
def test_health_lists_the_worker_processes(client):
    health = client.health()
    assert set(health) == {"jobs", "workers", "pool"}
    assert set(health["jobs"]) == {"completed", "failed", "inProgress", "inQueue", "retried"}
    assert health["workers"]["idle"] == 2 and health["workers"]["running"] == 0
    assert len(health["pool"]) == 2
    for entry in health["pool"]:
        assert entry["alive"] and entry["state"] == "idle" and entry["jobId"] is None
        os.kill(entry["pid"], 0)                      # a real, live process
        assert Path(entry["log"]).exists()


@pytest.mark.slow
def test_a_job_runs_end_to_end_and_streams_in_order(client):
    job = client.run({"count": 5, "sleep": 0.05})
    outputs = list(job.stream())                      # the SDK's own stream reader
    assert [o["i"] for o in outputs] == [0, 1, 2, 3, 4]
    status = status_of(client, job.job_id)
    assert status["status"] == COMPLETED and status["output"] == []
    assert status["workerId"] == outputs[0]["worker"]
    assert status["executionTime"] >= 200
    assert job.status() == COMPLETED


@pytest.mark.slow
def test_the_stream_is_read_once(client):
    job = client.run({"count": 3})
    wait_for(client, job.job_id, COMPLETED)
    first = stream_of(client, job.job_id)
    assert first["status"] == COMPLETED
    assert [c["output"]["i"] for c in first["stream"]] == [0, 1, 2]
    assert stream_of(client, job.job_id)["stream"] == []


@pytest.mark.slow
def test_an_error_yield_fails_the_job_and_retry_requeues_it(client):
    job = client.run({"count": 3, "error_at": 1})
    status = wait_for(client, job.job_id, FAILED, COMPLETED)
    assert status["status"] == FAILED and status["error"] == "asked to fail at step 1"
    assert [c["output"]["i"] for c in stream_of(client, job.job_id)["stream"]] == [0]
    retried = client.rp_client.post(f"{client.endpoint_id}/retry/{job.job_id}", None)
    assert retried == {"id": job.job_id, "status": IN_QUEUE}
    again = wait_for(client, job.job_id, FAILED, COMPLETED)
    assert again["status"] == FAILED and again["retries"] == 1
    assert client.health()["jobs"]["retried"] >= 1


@pytest.mark.slow
def test_a_raising_handler_fails_the_job(client):
    job = client.run({"count": 3, "raise_at": 0})
    status = wait_for(client, job.job_id, FAILED, COMPLETED)
    assert status["status"] == FAILED and "asked to raise at step 0" in status["error"]


@pytest.mark.slow
def test_two_workers_run_two_jobs_at_once(client, tmp_path):
    busy = {"count": 1000, "sleep": 0.05, "stop_file": str(tmp_path / "stop")}
    first, second = client.run(busy), client.run(busy)
    a = wait_for(client, first.job_id, IN_PROGRESS)
    b = wait_for(client, second.job_id, IN_PROGRESS)
    assert a["workerId"] != b["workerId"]
    assert client.health()["workers"]["running"] == 2
    (tmp_path / "stop").touch()
    for job in (first, second):
        assert wait_for(client, job.job_id, COMPLETED, FAILED)["status"] == COMPLETED


@pytest.mark.slow
def test_cancel_and_purge_queued_jobs(client, tmp_path):
    busy = [client.run({"count": 1000, "sleep": 0.05, "stop_file": str(tmp_path / "stop")})
            for _ in range(2)]
    for job in busy:
        wait_for(client, job.job_id, IN_PROGRESS)
    queued = client.run({"count": 1})
    assert queued.status() == IN_QUEUE
    assert queued.cancel() == {"id": queued.job_id, "status": CANCELLED}
    assert status_of(client, queued.job_id)["status"] == CANCELLED
    purged = [client.run({"count": 1}) for _ in range(3)]
    assert client.health()["jobs"]["inQueue"] == 3
    assert client.purge_queue() == {"removed": 3, "status": "completed"}
    assert client.health()["jobs"]["inQueue"] == 0
    assert {status_of(client, j.job_id)["status"] for j in purged} == {CANCELLED}
    (tmp_path / "stop").touch()
    for job in busy:                                   # the running jobs were not touched
        assert wait_for(client, job.job_id, COMPLETED, FAILED)["status"] == COMPLETED
    assert status_of(client, queued.job_id)["status"] == CANCELLED


@pytest.mark.slow
def test_cancelling_a_running_job_stops_and_replaces_its_worker(client, endpoint):
    job = client.run({"count": 1000, "sleep": 0.05})
    victim = worker_running(client, job.job_id)
    assert first_chunks(client, job.job_id)[0]["output"]["i"] == 0    # the handler runs
    assert job.cancel() == {"id": job.job_id, "status": CANCELLED}
    wait_gone(victim["pid"])
    # The handler saw SIGTERM and stopped after its step (the real one checkpoints there).
    assert (endpoint.marks / f"{job.job_id}.sigterm").exists()
    stream = stream_of(client, job.job_id)
    assert stream["status"] == CANCELLED and stream_of(client, job.job_id)["stream"] == []
    assert status_of(client, job.job_id)["status"] == CANCELLED
    pool = endpoint.wait_idle(2, timeout_s=PATIENCE_S)  # a replacement came up
    assert victim["id"] not in {w["id"] for w in pool}
    assert all(w["alive"] for w in pool)
    after = client.run({"count": 2})
    assert wait_for(client, after.job_id, COMPLETED, FAILED)["status"] == COMPLETED


@pytest.mark.slow
def test_a_killed_worker_fails_its_job_and_is_replaced(client, endpoint):
    job = client.run({"count": 1000, "sleep": 0.05})
    victim = worker_running(client, job.job_id)
    assert first_chunks(client, job.job_id)            # it is really running
    os.kill(victim["pid"], signal.SIGKILL)             # RunPod reclaims the spot GPU
    status = wait_for(client, job.job_id, FAILED, COMPLETED, CANCELLED)
    assert status["status"] == FAILED
    assert status["error"].startswith("worker lost") and "SIGKILL" in status["error"]
    assert victim["id"] in status["error"]
    wait_gone(victim["pid"], timeout=15)               # its orphaned heartbeat process too (SIGKILLed
                                                       # with the group before the job failed)
    pool = endpoint.wait_idle(2, timeout_s=PATIENCE_S)
    assert victim["id"] not in {w["id"] for w in pool}
    nxt = client.run({"count": 2})
    assert wait_for(client, nxt.job_id, COMPLETED, FAILED)["status"] == COMPLETED


@pytest.mark.slow
def test_an_execution_timeout_times_the_job_out_and_replaces_the_worker(client, endpoint):
    # 3 s: long enough to see the worker take it on a loaded machine, far short of its 50 s.
    job = client.run({"input": {"count": 1000, "sleep": 0.05},
                      "policy": {"executionTimeout": 3000}})
    victim = worker_running(client, job.job_id)
    status = wait_for(client, job.job_id, TIMED_OUT, FAILED, COMPLETED)
    assert status["status"] == TIMED_OUT and "execution timeout" in status["error"]
    wait_gone(victim["pid"])
    assert victim["id"] not in {w["id"] for w in endpoint.wait_idle(2, timeout_s=PATIENCE_S)}


@pytest.mark.slow
def test_the_asyncio_client(client):
    async def go():
        from runpod.http_client import ClientSession

        async with ClientSession() as session:
            ep = runpod.AsyncioEndpoint(client.endpoint_id, session, api_key="anything")
            job = await ep.run({"count": 2})
            assert await job.output(timeout=PATIENCE_S) == []
            assert await job.status() == COMPLETED
            assert "pool" in await ep.health()

    asyncio.run(go())


# ============================================================ api key, plain handler
@pytest.fixture(scope="module")
def keyed(tmp_path_factory):
    with LocalEndpoint(workers=1, endpoint_id="keyed", api_key="sekret",
                       worker_command=worker("plain"), worker_env=FAST_WORKER_ENV,
                       log_dir=tmp_path_factory.mktemp("keyed-logs"), poll_s=2.0,
                       stop_grace_s=5.0) as ep:
        saved = runpod.endpoint_url_base
        runpod.endpoint_url_base = ep.base_url
        try:
            yield ep
        finally:
            runpod.endpoint_url_base = saved


@pytest.mark.slow
def test_the_api_key_is_required_when_set(keyed):
    import requests

    with pytest.raises(RuntimeError, match="401"):
        runpod.Endpoint("keyed", api_key="wrong").health()
    reply = requests.post(f"{keyed.base_url}/keyed/run", json={"input": {}}, timeout=5)
    assert reply.status_code == 401 and "api key" in reply.json()["error"]
    ep = runpod.Endpoint("keyed", api_key="sekret")
    keyed.wait_idle(timeout_s=PATIENCE_S)              # the worker authenticated too
    output = ep.run_sync({"echo": [1, "two"]}, timeout=PATIENCE_S)
    assert output["echo"] == [1, "two"]
    failing = ep.run({"echo": 1, "raise": True})
    status = wait_for(ep, failing.job_id, FAILED, COMPLETED)
    assert status["status"] == FAILED and "asked to raise" in status["error"]


# ============================================================ the command
@pytest.mark.slow
def test_the_endpoint_command_serves_until_sigint(tmp_path):
    command = worker("counting")
    proc = subprocess.Popen(
        [sys.executable, "-c", "from control.local_endpoint.cli import endpoint; endpoint()",
         "--port", "0", "--workers", "1", "--endpoint-id", "cli",
         "--log-dir", str(tmp_path), "--worker-command", " ".join(command)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, **FAST_WORKER_ENV})
    try:
        base = None
        for line in proc.stdout:
            if "RUNPOD_ENDPOINT_BASE_URL=" in line:
                base = line.split("=", 1)[1].strip()
                break
        assert base, "the command printed no base URL"
        saved = runpod.endpoint_url_base
        runpod.endpoint_url_base = base
        try:
            ep = runpod.Endpoint("cli", api_key="x")
            job = ep.run({"count": 2})
            deadline = time.monotonic() + PATIENCE_S       # its worker starts meanwhile
            while job.status() != COMPLETED:
                assert time.monotonic() < deadline
                time.sleep(0.1)
            pids = [w["pid"] for w in ep.health()["pool"]]
        finally:
            runpod.endpoint_url_base = saved
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=PATIENCE_S) == 0
        for pid in pids:
            wait_gone(pid, timeout=10)                     # it stopped them before exiting
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
