"""RunPod's completion webhook: settle an attempt the moment its RunPod job ends, instead of
at the monitor's next read (``MONITOR_INTERVAL_SECONDS`` later).

``settle`` does what a monitor read does at the end, under the same lock: it reads the
stream (read-once: whatever it takes, it stores), until it is drained, and when RunPod's
own status is final, ``monitoring.finish_attempt`` (which claims the end once, reconciles
the events from the handler's log in storage and settles the job). The status that counts
is the endpoint's, read here, never the body's; the body only spares a ``/status`` call
for the error and the billed times. An attempt that has ended already is left alone, so a
repeated call, one that comes after the monitor settled it, or one before the end (the
status is not final yet: what the stream had is stored, the monitor carries on) changes
nothing it should not.
"""
from __future__ import annotations

import logging

from control.extensions import db
from control.models import JobAttempt
from control.services import gpu_endpoint
from control.services.ingest import ingest
from control.services.monitoring import finish_attempt

log = logging.getLogger(__name__)
MAX_READS = 5          # stream reads to drain it; more left: the monitor's chain finishes it


def settle(attempt_id: str, body: dict) -> str:
    """Settle the attempt if its RunPod job has ended. Returns ``settled``, ``already
    settled``, ``not final yet`` or ``left to the monitor`` (the endpoint could not be read,
    or the stream was not drained in ``MAX_READS`` reads)."""
    for _ in range(MAX_READS):
        attempt = db.session.get(JobAttempt, attempt_id, with_for_update=True, populate_existing=True)
        if attempt is None or attempt.ended_at is not None:
            db.session.rollback()
            return "already settled"
        job = attempt.job
        endpoint_id = gpu_endpoint.endpoint_of(job)
        try:
            status, chunks = gpu_endpoint.stream(attempt.runpod_job_id, endpoint_id)
        except gpu_endpoint.EndpointError as exc:
            db.session.rollback()
            log.warning("attempt %s: the completion webhook could not read the endpoint (%s); "
                        "the monitor will settle it", attempt_id, exc)
            return "left to the monitor"
        attempt.runpod_status = status
        ingest(job, attempt, chunks)                          # commits
        if status not in gpu_endpoint.FINAL_STATES:
            return "not final yet"
        if not chunks:
            finish_attempt(job, attempt, status, _status_body(attempt, status, body, endpoint_id))
            return "settled"
    return "left to the monitor"


def _status_body(attempt: JobAttempt, status: str, body: dict, endpoint_id: str | None) -> dict:
    """RunPod's status body: the webhook's, when it says what the endpoint says; else read."""
    if body.get("id") == attempt.runpod_job_id and body.get("status") == status:
        return body
    try:
        return gpu_endpoint.status(attempt.runpod_job_id, endpoint_id)
    except gpu_endpoint.EndpointError as exc:
        return {"error": str(exc)}
