"""RunPod Serverless's HTTP API on both sides, over a ``JobStore``.

Under ``/v2/<endpoint_id>/``:

clients (``runpod.Endpoint``, ``runpod.AsyncioEndpoint``)
    ``POST run`` · ``POST runsync[?wait=ms]`` · ``GET|POST status/<id>`` ·
    ``GET|POST stream/<id>`` (read-once; long-polls up to ``stream_wait_s``) ·
    ``POST cancel/<id>`` · ``POST retry/<id>`` · ``POST purge-queue`` · ``GET health``
workers (``runpod.serverless.start``, through its ``RUNPOD_WEBHOOK_*`` variables)
    ``GET job-take/<worker>?…&job_in_progress=0|1`` (long-poll up to ``poll_s``; 204 = no job) ·
    ``GET job-take-batch/<worker>?…&batch_size=n`` · ``GET job-stop/<worker>`` (the SDK's
    stop channel: held up to ``poll_s``, always 204; cancelled jobs' workers get SIGTERM) ·
    ``POST job-stream/<worker>/<id>`` · ``POST job-done/<worker>/<id>`` (JSON bodies sent as
    ``application/x-www-form-urlencoded``) · ``GET ping/<worker>``

``GET health`` is RunPod's shape plus ``pool``, the worker processes (a test kills the one
whose ``jobId`` it wants to lose)::

    {"jobs": {"completed": 3, "failed": 1, "inProgress": 1, "inQueue": 0, "retried": 0},
     "workers": {"idle": 1, "running": 1, "ready": 2, "initializing": 0, "throttled": 0,
                 "unhealthy": 0, "stopping": 0},
     "pool": [{"id": "local-3f9a0c1e", "pid": 4242, "alive": true,
               "state": "running",   # initializing|idle|running|stopping|unhealthy|exited
               "jobId": "<the job it runs>" | null, "startedAt": "2025-…+00:00",
               "lastSeenSecondsAgo": 0.4 | null, "log": "<log file>" | null}, ...]}

``completed``/``failed`` (FAILED and TIMED_OUT) and ``retried`` count since start;
``inProgress``/``inQueue`` are now. A worker started elsewhere shows with ``pid: null``.

With an api key, every route wants ``Authorization: Bearer <key>`` (clients) or
``Authorization: <key>`` (workers); without one, any key is accepted. Every refusal is a JSON
``{"error": "..."}`` with a 4xx status.
"""
from __future__ import annotations

import hmac
import json
import logging
from typing import Any, Callable

from flask import Blueprint, Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from .job import Policy
from .job_errors import BadRequest, JobError, NotFound
from .job_store import JobStore

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024 * 1024
MAX_RUNSYNC_WAIT_MS = 300_000


def create_app(store: JobStore, *, endpoint_id: str, api_key: str | None = None,
               stop_worker: Callable[[str], Any] | None = None,
               describe_workers: Callable[[], dict] | None = None,
               poll_s: float = 5.0, stream_wait_s: float = 2.0,
               runsync_wait_s: float = 90.0) -> Flask:
    """The Flask app. ``stop_worker(worker_id)`` stops a cancelled job's worker;
    ``describe_workers()`` gives ``/health`` its ``workers`` and ``pool`` parts."""
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.json.sort_keys = False
    stop_worker = stop_worker or (lambda worker_id: None)
    describe_workers = describe_workers or (lambda: describe_from_store(store))
    bp = Blueprint("v2", __name__, url_prefix="/v2/<endpoint>")

    @bp.url_value_preprocessor
    def _check_endpoint(_endpoint, values):
        name = values.pop("endpoint", None)
        if name != endpoint_id:
            raise NotFound(f"no endpoint {name!r} here (this is {endpoint_id!r})")

    @bp.before_request
    def _check_key():
        if api_key and not _key_matches(request.headers.get("Authorization"), api_key):
            return _error(401, "missing or wrong api key (Authorization: Bearer <key>)")
        return None

    # ------------------------------------------------------------------ clients
    @bp.post("/run")
    def run():
        job_input, policy, webhook = _run_request()
        return jsonify(store.submit(job_input, policy, webhook))

    @bp.post("/runsync")
    def runsync():
        wait_s = runsync_wait_s
        if "wait" in request.args:
            wait_s = _int_arg("wait", 1, MAX_RUNSYNC_WAIT_MS) / 1000.0
        job_input, policy, webhook = _run_request()
        submitted = store.submit(job_input, policy, webhook)
        return jsonify(store.wait_final(submitted["id"], wait_s))

    @bp.route("/status/<job_id>", methods=["GET", "POST"])
    def status(job_id):
        return jsonify(store.status(job_id))

    @bp.route("/stream/<job_id>", methods=["GET", "POST"])
    def stream(job_id):
        return jsonify(store.read_stream(job_id, stream_wait_s))

    @bp.post("/cancel/<job_id>")
    def cancel(job_id):
        body, worker = store.cancel(job_id)
        if worker is not None:
            stop_worker(worker)
        return jsonify(body)

    @bp.post("/retry/<job_id>")
    def retry(job_id):
        return jsonify(store.retry(job_id))

    @bp.post("/purge-queue")
    def purge_queue():
        return jsonify({"removed": store.purge(), "status": "completed"})

    @bp.get("/health")
    def health():
        return jsonify({"jobs": store.job_counts(), **describe_workers()})

    # ------------------------------------------------------------------ workers
    @bp.get("/job-take/<worker_id>")
    def job_take(worker_id):
        jobs = store.take(worker_id, 1, poll_s, _job_in_progress())
        return jsonify(jobs[0]) if jobs else Response(status=204)

    @bp.get("/job-take-batch/<worker_id>")
    def job_take_batch(worker_id):
        size = _int_arg("batch_size", 1, 1000) if "batch_size" in request.args else 1
        jobs = store.take(worker_id, size, poll_s, _job_in_progress())
        return jsonify(jobs) if jobs else Response(status=204)

    @bp.get("/job-stop/<worker_id>")
    def job_stop(worker_id):
        store.wait_stop(worker_id, poll_s)
        return Response(status=204)

    @bp.post("/job-stream/<worker_id>/<job_id>")
    def job_stream(worker_id, job_id):
        accepted = store.add_chunk(worker_id, job_id, _json_body(required=True))
        return jsonify({"accepted": accepted})

    @bp.post("/job-done/<worker_id>/<job_id>")
    def job_done(worker_id, job_id):
        accepted = store.finish(worker_id, job_id, _json_body(required=True))
        if not accepted:
            log.info("ignored the result of job %s from worker %s (the job is no longer "
                     "running there)", job_id, worker_id)
        return jsonify({"accepted": accepted})

    @bp.get("/ping/<worker_id>")
    def ping(worker_id):
        unhealthy = None
        if request.args.get("status") == "unhealthy":
            unhealthy = (f"{request.args.get('check', 'fitness check')}: "
                         f"{request.args.get('reason', '')}").strip(": ")
            log.warning("worker %s reports itself unhealthy: %s", worker_id, unhealthy)
        store.ping(worker_id, unhealthy)
        return jsonify({})

    app.register_blueprint(bp)

    # ------------------------------------------------------------------ errors
    @app.errorhandler(JobError)
    def _job_error(exc: JobError):
        return _error(exc.status, exc.message)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        return _error(exc.code or 500, exc.description or exc.name)

    @app.errorhandler(Exception)
    def _internal_error(exc: Exception):   # a bug: say so, in JSON, and log the traceback
        log.exception("local endpoint: unhandled error on %s %s", request.method, request.path)
        return _error(500, f"internal error: {type(exc).__name__}: {exc}")

    return app


def describe_from_store(store: JobStore) -> dict:
    """``/health``'s workers when no processes are managed here (external workers only)."""
    pool = []
    for worker_id, info in sorted(store.workers().items()):
        pool.append({"id": worker_id, "pid": None, "alive": None,
                     "state": worker_state(info), "jobId": (info["jobs"] or [None])[0]})
    return {"workers": count_states(pool), "pool": pool}


def worker_state(info: dict | None) -> str:
    """initializing | idle | running | stopping | unhealthy, from ``JobStore.workers()``."""
    if info is None or info["seen_ago_s"] is None:
        return "stopping" if info and info["draining"] else "initializing"
    if info["draining"]:
        return "stopping"
    if info["jobs"]:
        return "running"
    if info["unhealthy"]:
        return "unhealthy"
    return "idle"


def count_states(pool: list[dict]) -> dict:
    """RunPod's ``workers`` counts, plus ``stopping``; ``ready`` = idle + running."""
    counts = {state: 0 for state in ("idle", "running", "initializing", "stopping",
                                     "unhealthy")}
    for entry in pool:
        if entry["state"] in counts:
            counts[entry["state"]] += 1
    return {"idle": counts["idle"], "running": counts["running"],
            "ready": counts["idle"] + counts["running"],
            "initializing": counts["initializing"], "throttled": 0,
            "unhealthy": counts["unhealthy"], "stopping": counts["stopping"]}


def _run_request() -> tuple[Any, Policy, str | None]:
    body = _json_body(required=True)
    if not isinstance(body, dict):
        raise BadRequest('the body must be a JSON object: {"input": {...}}')
    if "input" not in body:
        raise BadRequest('the body has no "input"')
    if not isinstance(body["input"], dict):
        raise BadRequest('"input" must be a JSON object')
    webhook = body.get("webhook")
    if webhook is not None and not (isinstance(webhook, str)
                                    and webhook.startswith(("http://", "https://"))):
        raise BadRequest('"webhook" must be an http(s) URL')
    return body["input"], Policy.parse(body.get("policy")), webhook


def _json_body(required: bool = False) -> Any:
    """The body as JSON, whatever the Content-Type (the SDK's worker says form-urlencoded)."""
    raw = request.get_data(cache=True)
    if not raw.strip():
        if required:
            raise BadRequest("the request has no body (a JSON body is required)")
        return None
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}") from None


def _int_arg(name: str, low: int, high: int) -> int:
    raw = request.args.get(name, "")
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"query parameter {name} must be an integer, not {raw!r}") from None
    if not low <= value <= high:
        raise BadRequest(f"query parameter {name} must be between {low} and {high}")
    return value


def _job_in_progress() -> bool | None:
    value = request.args.get("job_in_progress")
    return None if value is None else value == "1"


def _key_matches(header: str | None, api_key: str) -> bool:
    token = (header or "").strip()
    if token[:7].lower() == "bearer ":
        token = token[7:].strip()
    return hmac.compare_digest(token.encode(), api_key.encode())


def _error(status: int, message: str) -> Response:
    response = jsonify({"error": message})
    response.status_code = status
    return response
