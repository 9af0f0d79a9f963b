"""What a run leaves under the job's prefix besides checkpoints: the adapter in PEFT format
(with its tokenizer), ``metrics.jsonl`` (one line per optimizer step) and
``summary.json``, written last: its presence means the run is done."""
from __future__ import annotations

import json
import platform
import tempfile
from importlib import metadata

import torch
from pathlib import Path

from shared.errors import CheckpointMismatch
from shared.job_input import JobInput
from shared.storage import Storage, join
from shared.storage.layout import JobLayout

SOFTWARE = ("torch", "transformers", "peft", "accelerate", "bitsandbytes", "runpod")


def save_adapter(storage: Storage, layout: JobLayout, model, tokenizer) -> int:
    """Upload the adapter and its tokenizer; their size in bytes."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "adapter"
        model.save_pretrained(str(out))
        tokenizer.save_pretrained(str(out))
        size = 0
        for path in sorted(out.rglob("*")):
            if path.is_file():
                size += storage.put_file(join(layout.adapter, path.relative_to(out).as_posix()), path)
    return size


def write_metrics(storage: Storage, layout: JobLayout, metrics: list[dict]) -> int:
    """Write every step's metrics so far; their size in bytes."""
    body = "".join(json.dumps(m) + "\n" for m in metrics).encode()
    storage.put_bytes(layout.metrics, body)
    return len(body)


def write_summary(storage: Storage, layout: JobLayout, summary: dict) -> int:
    """Write the summary, which marks the run done; its size in bytes."""
    body = json.dumps(summary, indent=2).encode()
    storage.put_bytes(layout.summary, body)
    return len(body)


def finished_summary(storage: Storage, layout: JobLayout, job: JobInput) -> dict | None:
    """The summary of this run if it has already finished; a different run's is refused."""
    if not storage.exists(layout.summary):
        return None
    summary = json.loads(storage.get_bytes(layout.summary))
    if summary.get("fingerprint") != job.fingerprint():
        raise CheckpointMismatch(
            f"{layout.prefix or 'the output directory'} holds the finished result of a "
            "different run", fix="Use a new output directory.")
    return summary


def software() -> dict[str, str]:
    """The versions the run trained with, and its device, for the report's appendix."""
    found = {"python": platform.python_version()}
    for name in SOFTWARE:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    found["device"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    return found
