"""A job of the local endpoint: its states, its ``Policy`` and its record (``Job``), whose
``view`` is the ``/status`` body. The transitions between the states are ``JobStore``'s
(``job_store``).

Times in a policy are milliseconds, as RunPod's: ``{"executionTimeout": 600000, "ttl": ...}``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from .job_errors import BadRequest

IN_QUEUE, IN_PROGRESS = "IN_QUEUE", "IN_PROGRESS"
COMPLETED, FAILED, CANCELLED, TIMED_OUT = "COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"
FINAL_STATES = frozenset({COMPLETED, FAILED, CANCELLED, TIMED_OUT})
RETRYABLE = frozenset({FAILED, TIMED_OUT})
DAY_S = 24 * 3600.0


@dataclass(frozen=True)
class Policy:
    """A job's limits in seconds, parsed from RunPod's ``policy`` (milliseconds)."""

    execution_timeout_s: float = DAY_S
    ttl_s: float = DAY_S

    @classmethod
    def parse(cls, raw: Any) -> "Policy":
        """
        >>> Policy.parse({"executionTimeout": 1500, "ttl": 60000})
        Policy(execution_timeout_s=1.5, ttl_s=60.0)
        >>> Policy.parse(None) == Policy()
        True
        """
        if raw is None:
            return cls()
        if not isinstance(raw, dict):
            raise BadRequest("policy must be a JSON object")
        values = {}
        for key, name in (("executionTimeout", "execution_timeout_s"), ("ttl", "ttl_s")):
            value = raw.get(key)
            if value is None:
                continue
            if (isinstance(value, bool) or not isinstance(value, (int, float))
                    or not math.isfinite(value) or value <= 0):
                raise BadRequest(f"policy.{key} must be a positive number of milliseconds")
            values[name] = value / 1000.0
        return cls(**values)


@dataclass
class Job:
    id: str
    input: Any
    policy: Policy
    queued_at: float                  # submission, or the last retry (TTL and delay count from it)
    webhook: str | None = None
    status: str = IN_QUEUE
    started_at: float | None = None
    finished_at: float | None = None
    worker_id: str | None = None
    output: Any = None
    error: Any = None
    chunks: list = field(default_factory=list)   # stream chunks not read yet
    retries: int = 0

    def view(self, now: float) -> dict:
        """The ``/status`` body."""
        started = self.started_at
        body: dict[str, Any] = {
            "id": self.id,
            "status": self.status,
            "delayTime": _ms((started if started is not None else now) - self.queued_at),
            "executionTime": 0 if started is None else _ms((self.finished_at or now) - started),
        }
        if self.worker_id is not None:
            body["workerId"] = self.worker_id
        if self.output is not None:
            body["output"] = self.output
        if self.error is not None:
            body["error"] = self.error
        if self.retries:
            body["retries"] = self.retries
        return body


def _ms(seconds: float) -> int:
    return max(0, int(round(seconds * 1000)))
