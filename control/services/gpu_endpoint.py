"""The GPU endpoint, through the runpod SDK's own client.

``RUNPOD_ENDPOINT_BASE_URL`` points it at the local endpoint (the embedded default); with
``RUNPOD_API_KEY`` and ``RUNPOD_ENDPOINT_ID`` and no base URL it reaches RunPod itself.
"""
from __future__ import annotations

from flask import current_app

from shared.job_input import JobInput

FINAL_STATES = ("COMPLETED", "FAILED", "TIMED_OUT", "CANCELLED")   # the SDK's own list lacks CANCELLED
RUNPOD_BASE_URL = "https://api.runpod.ai/v2"


class EndpointError(Exception):
    """The endpoint could not be reached or refused a request (``status`` 404: job gone)."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


def endpoint(endpoint_id: str | None = None):
    """A ``runpod.Endpoint`` (``endpoint_id``, else ``RUNPOD_ENDPOINT_ID``), built without
    touching the SDK's globals."""
    # Imported here, not at the top: importing runpod reconfigures the root logger
    # (logging.basicConfig at INFO) and costs ~2 s, in every process that imports the services.
    import runpod

    cfg = current_app.config
    ep = runpod.Endpoint(endpoint_id or cfg["RUNPOD_ENDPOINT_ID"], api_key=cfg["RUNPOD_API_KEY"])
    ep.rp_client.endpoint_url_base = (cfg.get("RUNPOD_ENDPOINT_BASE_URL") or RUNPOD_BASE_URL).rstrip("/")
    return ep


def _call(fn, what: str):
    import requests          # with runpod (above): only where the endpoint is called

    try:
        return fn()
    except requests.HTTPError as exc:
        status = exc.response.status_code if exc.response is not None else None
        raise EndpointError(f"{what}: the endpoint answered {status}", status) from exc
    except RuntimeError as exc:
        # The SDK raises these itself for a 401 (before raise_for_status) and a missing key.
        refused = any(w in str(exc).lower() for w in ("unauthorized", "api key"))
        raise EndpointError(f"{what}: {exc}", 401 if refused else None) from exc
    except (requests.RequestException, ValueError) as exc:
        raise EndpointError(f"{what}: {type(exc).__name__}: {exc}") from exc


# Past the time the handler itself stops at (with a checkpoint), RunPod's timeout is the backstop.
TIMEOUT_GRACE_S = 600


def submit(job_input: JobInput, endpoint_id: str | None = None, webhook: str | None = None) -> str:
    """``/run`` with an explicit execution timeout and TTL: the job's time left (the input's
    ``time_limit_seconds``; 24 h hard limit over all attempts) plus a grace for the
    handler's own checkpoint-and-stop; with ``webhook``, RunPod calls it when the job ends."""
    left = job_input.time_limit_seconds
    seconds = current_app.config["RUNPOD_EXECUTION_TIMEOUT_S"] if left is None else max(60.0, left)
    ms = int((seconds + TIMEOUT_GRACE_S) * 1000)
    body = {"input": job_input.model_dump(mode="json"),
            "policy": {"executionTimeout": ms, "ttl": ms + 3600 * 1000}}
    if webhook:
        body["webhook"] = webhook
    job = _call(lambda: endpoint(endpoint_id).run(body), f"submitting job {job_input.job_id}")
    return job.job_id


def stream(runpod_job_id: str, endpoint_id: str | None = None) -> tuple[str, list]:
    """Read the stream once: (status, the outputs of the chunks read). Chunks read are gone."""
    ep = endpoint(endpoint_id)
    reply = _call(lambda: ep.rp_client.get(f"{ep.endpoint_id}/stream/{runpod_job_id}", timeout=30),
                  f"reading the stream of {runpod_job_id}")
    return reply.get("status", "UNKNOWN"), [c.get("output") for c in reply.get("stream") or []
                                            if isinstance(c, dict)]


def status(runpod_job_id: str, endpoint_id: str | None = None) -> dict:
    ep = endpoint(endpoint_id)
    return _call(lambda: ep.rp_client.get(f"{ep.endpoint_id}/status/{runpod_job_id}"),
                 f"reading the status of {runpod_job_id}")


def cancel(runpod_job_id: str, endpoint_id: str | None = None) -> dict:
    ep = endpoint(endpoint_id)
    return _call(lambda: ep.rp_client.post(f"{ep.endpoint_id}/cancel/{runpod_job_id}", {}),
                 f"cancelling {runpod_job_id}")


def endpoint_of(job) -> str | None:
    """The endpoint a job's GPU choice is served by (``GPU_ENDPOINTS``, recorded when it was
    created); None for a job from before the map: ``RUNPOD_ENDPOINT_ID``."""
    return ((job.configuration or {}).get("gpu") or {}).get("endpoint_id")
