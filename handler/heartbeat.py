"""Heartbeats while the recipe waits on one long call: fetching or loading the base model,
loading a checkpoint, scoring the held-out split. The call runs in a thread; the generator
yields a ``heartbeat`` event every ``HEARTBEAT_SECONDS`` (60) until it returns, so the
stream never goes quiet for long while the worker is alive, and the control plane's stall
limit for stages without steps (``STALL_STAGE_SECONDS``) can be minutes rather than the
longest download a 70B model needs. A frozen or lost worker still falls silent."""
from __future__ import annotations

import os
import time
from collections.abc import Callable, Generator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as StillRunning
from typing import TypeVar

T = TypeVar("T")
HEARTBEAT_SECONDS = float(os.environ.get("HEARTBEAT_SECONDS", 60))


def beating(fn: Callable[[], T], beat: Callable[[float], dict],
            every_s: float = HEARTBEAT_SECONDS) -> Generator[dict, None, T]:
    """Run ``fn()`` in a thread and yield ``beat(seconds so far)`` every ``every_s`` until it
    ends; then return its value (``value = yield from beating(...)``) or raise its exception.
    Closing the generator early waits for ``fn`` to end (a thread can't be stopped)."""
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="recipe-call") as pool:
        future = pool.submit(fn)
        while True:
            try:
                return future.result(timeout=every_s)
            except StillRunning:
                yield beat(time.monotonic() - started)
