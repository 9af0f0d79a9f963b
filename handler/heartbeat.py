"""Heartbeats while the recipe waits on one long call: fetching or loading the base model,
loading a checkpoint, scoring the held-out split. The call runs in a thread; the generator
yields a ``heartbeat`` event every ``every_s`` (the worker's ``HEARTBEAT_SECONDS``, 60)
until it returns, so the stream never goes quiet for long while the worker is alive, and
the control plane's stall limit for stages without steps (``STALL_STAGE_SECONDS``) can be
minutes rather than the longest download a 70B model needs. A frozen or lost worker still
falls silent."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Generator
from typing import TypeVar

T = TypeVar("T")


def beating(fn: Callable[[], T], beat: Callable[[float], dict],
            every_s: float) -> Generator[dict, None, T]:
    """Run ``fn()`` in a thread and yield ``beat(seconds so far)`` every ``every_s`` until it
    ends; then return its value (``value = yield from beating(...)``) or raise its exception,
    whatever it is (a ``TimeoutError`` included).

    The thread is a daemon and nobody waits for it when the generator is closed or the
    caller gives up (Ctrl-C, SIGTERM's checkpoint-and-exit): a download or a model load
    can't be stopped midway, and the process must still be able to end."""
    outcome: dict = {}
    finished = threading.Event()

    def call():
        try:
            outcome["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller as it is
            outcome["error"] = exc
        finally:
            finished.set()

    started = time.monotonic()
    threading.Thread(target=call, name="recipe-call", daemon=True).start()
    while not finished.wait(every_s):
        yield beat(time.monotonic() - started)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]
