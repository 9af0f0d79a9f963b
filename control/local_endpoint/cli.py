"""``endpoint``: run the local RunPod Serverless endpoint until Ctrl-C or SIGTERM.

    pipeline endpoint [--host 127.0.0.1] [--port 8090] [--workers 1] [--endpoint-id local]
                      [--api-key KEY] [--log-dir DIR] [--worker-command CMD]

Then point the control plane at it: ``RUNPOD_ENDPOINT_BASE_URL=http://127.0.0.1:8090/v2``.
Workers inherit this command's environment (``STORAGE_BACKEND``, ``STORAGE_LOCAL_ROOT``, ...).
"""
from __future__ import annotations

import shlex

import click

from .endpoint import serve


@click.command("endpoint")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8090, show_default=True, type=click.IntRange(0, 65535),
              help="Port to listen on (0: any free port).")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(0),
              help="Worker processes to keep running.")
@click.option("--endpoint-id", default="local", show_default=True,
              help="The endpoint id in the URLs (RUNPOD_ENDPOINT_ID for the control plane).")
@click.option("--api-key", envvar="RUNPOD_API_KEY", default=None,
              help="Require this key from clients and workers (default: accept any).")
@click.option("--log-dir", type=click.Path(file_okay=False), default=None,
              help="Write each worker's output to DIR/<worker id>.log instead of this terminal.")
@click.option("--worker-command", default=None,
              help="The worker command line (default: python -u -m handler.handler).")
@click.option("--stop-grace", default=30.0, show_default=True, type=click.FloatRange(0),
              help="Seconds a SIGTERMed worker gets to checkpoint before SIGKILL.")
def endpoint_command(host, port, workers, endpoint_id, api_key, log_dir, worker_command,
                     stop_grace):
    """Run a local RunPod Serverless endpoint and its workers."""
    try:
        serve(host=host, port=port, workers=workers, endpoint_id=endpoint_id, api_key=api_key,
              log_dir=log_dir, stop_grace_s=stop_grace,
              worker_command=shlex.split(worker_command) if worker_command else None)
    except (OSError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc


endpoint = endpoint_command
