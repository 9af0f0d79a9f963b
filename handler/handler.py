"""The RunPod Serverless worker: a generator handler that runs the training recipe.

Input (``job["input"]``), the job input of ``shared.job_input.JobInput``::

    {
      "job_id": "tj_123",              # the training job (checkpoints are keyed by it)
      "attempt": 1,                    # control plane's attempt number
      "dataset": {"key": "training-files/ab12.json", "sha256": "<64 hex>",
                  "format": "brightrun-lora-v4" | "chat-jsonl" | null},
      "base_model": "embedded" | "<model dir>" | "<file>.gguf" | "<hub id>",
      "method": "qlora" | "lora",
      "preset": "conservative" | "balanced" | "aggressive",
      "hyperparameters": {...},        # below
      "checkpoint": {"every_steps": 100, "prefix": "jobs/tj_123"},
      "validation": {"fraction": 0.2, "seed": 42},
      "data": {"fold": true, "min_quality_score": null},
      "seed": 42
    }

``hyperparameters`` are those of ``shared.job_input.Hyperparameters``; those marked
"preset" have no default there, and the control plane fills them from the job's preset::

<hyperparameters>

Unknown fields are refused; no secret ever travels in the input. The worker reads its own
environment, once, when it starts (``handler/settings.py``: ``HF_TOKEN`` for gated base
models, ``BRIGHTRUN_MODEL_CACHE`` for the converted-model cache, on the network volume,
and the timings), and its object storage's for each job (``STORAGE_BACKEND`` /
``STORAGE_LOCAL_ROOT`` or ``SUPABASE_*``: ``shared.storage.storage_from_env``).

Yields the events of ``shared.events`` in order (stage, metrics, checkpoint, evaluation,
artifact, warning, completed; a heartbeat each ``HEARTBEAT_SECONDS`` while a long call runs). A failure yields one ``error`` event, which RunPod turns into
the FAILED job's output. Every event is also kept in storage (``handler.event_log``), since the stream is read-once.
On SIGTERM (a reclaimed worker) the recipe checkpoints after the
current step and the stream ends without ``completed``: the control plane dispatches a new
attempt, which resumes from that checkpoint. A re-run of the same job by RunPod resumes too.
"""
from __future__ import annotations

import json
import signal
import threading
import typing

# Heavy imports happen once, when the worker starts, not per job.
import torch  # noqa: F401
import transformers  # noqa: F401
import peft  # noqa: F401

from handler.event_log import EventLog
from handler.recipe import Recipe
from handler.settings import HandlerSettings
from shared.errors import ConfigError, ErrorType, Interrupted, Superseded
from shared.events import EventStream
from shared.failures import classify
from shared.job_input import Hyperparameters, JobInput
from shared.storage import storage_from_env
from shared.storage.retrying import RetryingStorage

# The worker's environment, read once: this module is imported once, when the worker starts.
SETTINGS = HandlerSettings.from_env()

_stop = threading.Event()
_installed = False
# The configuration runpod.serverless.start runs with; "refresh_worker" set here makes the
# SDK stop this worker once the job in hand has ended.
WORKER_CONFIG: dict = {"return_aggregate_stream": False}


def _install_sigterm() -> None:
    """Chain a checkpoint request in front of the worker's own SIGTERM handling."""
    global _installed
    if _installed or threading.current_thread() is not threading.main_thread():
        return
    previous = signal.getsignal(signal.SIGTERM)

    def on_term(signum, frame):
        _stop.set()
        if callable(previous):
            previous(signum, frame)

    signal.signal(signal.SIGTERM, on_term)
    _installed = True


def _gpu_memory_gb() -> float | None:
    if torch.cuda.is_available():
        return round(torch.cuda.get_device_properties(0).total_memory / 2**30)
    return None


def _error_event(stream: EventStream, exc: Exception, settings: dict | None = None) -> dict:
    """The failure, classified (``shared.failures``): type, user or platform, message, cause,
    fix, and the settings a retry should change. A GPU fault also retires this worker."""
    failure = classify(exc, settings=settings, gpu_memory_gb=_gpu_memory_gb())
    if failure.type == ErrorType.GPU_FAULT.value:
        # The CUDA context is unusable: stop this worker after the job, so RunPod replaces it.
        WORKER_CONFIG["refresh_worker"] = True
    return stream.make("error", error=failure.to_dict())


def handler(job: dict):
    """Run one training job attempt, yielding its events."""
    _install_sigterm()
    raw = job.get("input") or {}
    try:
        job_input = JobInput.parse(raw)
    except ConfigError as exc:
        job_id = raw.get("job_id") if isinstance(raw, dict) and isinstance(raw.get("job_id"), str) else str(job.get("id", "unknown"))
        attempt = raw.get("attempt") if isinstance(raw, dict) and isinstance(raw.get("attempt"), int) and raw["attempt"] >= 1 else 1
        yield _error_event(EventStream(job_id, attempt), exc)
        return
    stream = EventStream(job_input.job_id, job_input.attempt)
    log = None
    try:
        # Storage down for longer than storage_retry_seconds fails the attempt (the job then
        # recovers from its last checkpoint on a new attempt).
        storage = RetryingStorage(storage_from_env(), patience_s=SETTINGS.storage_retry_seconds)
        recipe = Recipe(job_input, storage, settings=SETTINGS, should_stop=_stop.is_set)
        stream = recipe.events
        log = EventLog(storage, recipe.layout, job_input.attempt)
        for event in recipe.run():
            if event["type"] != "heartbeat":    # no state to reconcile; a load needs no storage
                log.record(event)
            yield event
        return
    except Interrupted as exc:
        last = stream.make("warning", code="interrupted", message=exc.message)
    except Superseded as exc:
        last = stream.make("warning", code="superseded", message=exc.message)
    except Exception as exc:  # noqa: BLE001 - every failure is reported as an event
        last = _error_event(stream, exc, job_input.hyperparameters.model_dump())
    if log is not None:
        try:
            log.record(last)
        except Exception:  # noqa: BLE001 - the event still goes out on the stream
            pass
    yield last


def _hyperparameter_table() -> str:
    """One line per field of ``Hyperparameters``: name, type, default ("preset" when the
    preset gives it), description."""
    lines = []
    for name, field in Hyperparameters.model_fields.items():
        kind = field.annotation
        note = field.description or ""
        if typing.get_origin(kind) is typing.Literal:
            choices = typing.get_args(kind)
            kind = type(choices[0])
            note = "; ".join(filter(None, [note, "one of " + ", ".join(map(json.dumps, choices))]))
        type_name = kind.__name__ if isinstance(kind, type) else str(kind)
        default = "preset" if field.is_required() else json.dumps(field.default)
        lines.append(f"    {name:<28} {type_name:<10} {default:<9} {note}".rstrip())
    return "\n".join(lines)


if __doc__:
    __doc__ = __doc__.replace("<hyperparameters>", _hyperparameter_table())


if __name__ == "__main__":
    import runpod

    WORKER_CONFIG["handler"] = handler
    runpod.serverless.start(WORKER_CONFIG)
