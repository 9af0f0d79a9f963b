"""The worker's settings: every environment variable the handler side reads, read once when
it starts (``handler/handler.py``, or ``pipeline train`` on the command line) and passed
down to what uses them. No other handler module reads the environment.

Object storage is configured apart, per job, by ``shared.storage.storage_from_env``
(``STORAGE_BACKEND``, ``STORAGE_LOCAL_ROOT``, ``SUPABASE_*``); the Hugging Face libraries
read their own variables (``HF_HOME``, ``HF_HUB_OFFLINE``...).

>>> HandlerSettings.from_env({"HEARTBEAT_SECONDS": "0.5", "HF_TOKEN": "hf_x"}).heartbeat_seconds
0.5
>>> HandlerSettings.from_env({}).storage_retry_seconds
300.0
>>> HandlerSettings.from_env({"STORAGE_RETRY_SECONDS": "5 min"})
Traceback (most recent call last):
...
ValueError: the environment variable STORAGE_RETRY_SECONDS='5 min' is not a number: how long storage may fail before the attempt gives up (the job then recovers from its last checkpoint)
"""
from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path

from shared.dataset.loading import MAX_BYTES


def _setting(variable: str, parse: Callable[[str], object], help: str, default=MISSING,
             default_factory=MISSING):
    return field(default=default, default_factory=default_factory,
                 metadata={"env": variable, "parse": parse, "help": help})


def _default_model_cache() -> Path:
    return Path.home() / ".cache" / "brightrun" / "models"


@dataclass(frozen=True)
class HandlerSettings:
    heartbeat_seconds: float = _setting(
        "HEARTBEAT_SECONDS", float, default=60.0,
        help="how often a heartbeat event is sent while one long call runs (fetching or "
             "loading the base model, loading a checkpoint, scoring the held-out split)")
    control_poll_seconds: float = _setting(
        "CONTROL_POLL_SECONDS", float, default=5.0,
        help="how often training looks at <prefix>/control/ for a checkpoint request or a "
             "newer attempt")
    storage_retry_seconds: float = _setting(
        "STORAGE_RETRY_SECONDS", float, default=300.0,
        help="how long storage may fail before the attempt gives up (the job then recovers "
             "from its last checkpoint)")
    model_cache: Path = _setting(
        "BRIGHTRUN_MODEL_CACHE", Path, default_factory=_default_model_cache,
        help="where GGUF base models are cached once converted (point it at the network volume)")
    hf_token: str | None = _setting(
        "HF_TOKEN", str, default=None, help="Hugging Face token for gated base models")
    dataset_max_bytes: int = _setting(
        "DATASET_MAX_BYTES", int, default=MAX_BYTES,
        help="the largest dataset file accepted, in bytes")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "HandlerSettings":
        """The settings from ``env`` (the process environment by default); a variable that
        is not set keeps its default."""
        env = os.environ if env is None else env
        values = {}
        for f in fields(cls):
            name = f.metadata["env"]
            if name not in env:
                continue
            try:
                values[f.name] = f.metadata["parse"](env[name])
            except ValueError:
                kind = {float: "a number", int: "a whole number"}.get(f.metadata["parse"], "a value")
                raise ValueError(f"the environment variable {name}={env[name]!r} is not {kind}: "
                                 f"{f.metadata['help']}") from None
        return cls(**values)
