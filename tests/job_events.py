"""The events a handler sends for a job, as the ingestion and recovery tests feed them."""
from __future__ import annotations

from shared.events import EventStream


def events_of(job_id, attempt=1, steps=3):
    s = EventStream(job_id, attempt)
    out = [s.make("stage", stage="preprocessing"), s.make("stage", stage="training")]
    for step in range(1, steps + 1):
        out.append(s.make("metrics", step=step, total_steps=10, epoch=step / 10, loss=3.0 - step * 0.1,
                          lr=1e-4, eta_seconds=60.0 * (10 - step)))
    return out
