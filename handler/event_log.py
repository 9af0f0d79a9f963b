"""The handler's own copy of its events, kept in storage beside its checkpoints.

The serverless stream is read-once: a chunk the control plane fetched and failed to store
is gone. So every run of an attempt also writes its events to
``<prefix>/events/attempt-<N>/run-<first seq>/<first seq of segment>.jsonl``
(``JobLayout.event_segment``), a new segment at each flush (never rewriting one), and the
control plane reconciles from there when an attempt ends.
"""
from __future__ import annotations

import json
import time

from shared.storage import Storage
from shared.storage.layout import JobLayout

FLUSH_TYPES = {"checkpoint", "artifact", "evaluation", "error", "completed", "warning", "stage"}
FLUSH_SECONDS = 30.0


class EventLog:
    def __init__(self, storage: Storage, layout: JobLayout, attempt: int):
        self.storage = storage
        self.layout = layout
        self.attempt = attempt
        self.pending: list[dict] = []
        self.run_first_seq: int | None = None
        self.last_flush = time.monotonic()

    def record(self, event: dict) -> None:
        """Keep an event; flush at milestones and every 30 s (before it is yielded)."""
        if self.run_first_seq is None:
            self.run_first_seq = event["seq"]
        self.pending.append(event)
        if event["type"] in FLUSH_TYPES or time.monotonic() - self.last_flush > FLUSH_SECONDS:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        body = "".join(json.dumps(e, separators=(",", ":")) + "\n" for e in self.pending)
        key = self.layout.event_segment(self.attempt, self.run_first_seq, self.pending[0]["seq"])
        self.storage.put_bytes(key, body.encode())
        self.pending = []
        self.last_flush = time.monotonic()
