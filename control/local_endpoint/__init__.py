"""A local RunPod Serverless endpoint: the embedded default GPU endpoint.

It speaks RunPod's HTTP protocol on both sides: the control plane uses the real SDK client
(``runpod.Endpoint`` with ``runpod.endpoint_url_base = endpoint.base_url``) and N worker
processes run the real SDK worker loop (``runpod.serverless.start``) with their
``RUNPOD_WEBHOOK_*`` variables pointing here. Killing a worker process is how a test
simulates RunPod reclaiming a spot GPU.

Modules: ``job_store`` (``JobStore``: the state machine, no HTTP), ``job`` (a job's states,
``Policy`` and record), ``job_errors`` (the refusals, with their HTTP statuses), ``server``
(the routes), ``pool`` (worker processes), ``endpoint`` (``LocalEndpoint``, ``serve``),
``webhooks``, ``cli`` (the ``endpoint`` command).
"""
from .endpoint import WORKER_ENV_DEFAULTS, LocalEndpoint, default_worker_command, serve
from .job import FINAL_STATES, Policy
from .job_store import JobStore

__all__ = ["FINAL_STATES", "JobStore", "LocalEndpoint", "Policy", "WORKER_ENV_DEFAULTS",
           "default_worker_command", "serve"]
