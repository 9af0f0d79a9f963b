"""What tells a running attempt to stop or to checkpoint, besides SIGTERM: the control
plane's documents under ``<prefix>/control/`` (a newer attempt supersedes this one; "checkpoint
at the next step"), looked at every ``CONTROL_POLL_SECONDS``, and the attempt's time limit."""
from __future__ import annotations

import json
import time

from shared.errors import ErrorType, StopRequested, StorageError, Superseded
from shared.storage import Storage
from shared.storage.layout import JobLayout

TIME_LIMIT_MARGIN_S = 60.0   # stop this long (plus 3 steps) before the time limit, to checkpoint


class ControlSignals:
    def __init__(self, storage: Storage, layout: JobLayout, attempt: int, *,
                 poll_seconds: float, time_limit_seconds: int | None):
        self.storage = storage
        self.layout = layout
        self.attempt = attempt
        self.poll_seconds = poll_seconds
        self.time_limit_seconds = time_limit_seconds
        self.started = time.monotonic()
        self.last_poll = 0.0
        self.stop: dict | None = None     # the control plane's stop request, once seen

    def _read(self, key: str) -> dict | None:
        """A control document, or None when there is none (or storage does not answer now:
        the next poll asks again)."""
        store = getattr(self.storage, "inner", self.storage)      # no retrying for a poll
        try:
            return json.loads(store.get_bytes(key))
        except (StorageError, ValueError):
            return None

    def check_current_attempt(self) -> None:
        """Stop if the control plane has moved on to a newer attempt (never two writers)."""
        current = (self._read(self.layout.attempt_marker) or {}).get("attempt", 0)
        if current > self.attempt:
            raise Superseded(self.attempt, current)

    def checkpoint_requested(self) -> bool:
        """Once every ``poll_seconds``: a newer attempt stops this one; a stop request is
        noted (``stop``); a checkpoint request is taken (and cleared)."""
        if time.monotonic() - self.last_poll < self.poll_seconds:
            return False
        self.last_poll = time.monotonic()
        self.check_current_attempt()
        self.stop = self.stop or self._read(self.layout.stop_request)
        if self._read(self.layout.checkpoint_request) is None:
            return False
        self.storage.delete(self.layout.checkpoint_request)
        return True

    def near_time_limit(self, per_step: float) -> bool:
        """Whether the time limit is closer than the margin and three more steps."""
        limit = self.time_limit_seconds
        if not limit:
            return False
        return time.monotonic() - self.started + TIME_LIMIT_MARGIN_S + 3 * (per_step or 0) >= limit


def stop_for(request: dict, step: int) -> StopRequested:
    """The error a stop request ends the attempt with (after its checkpoint of ``step``)."""
    kind = ErrorType.SPEND_CAP if request.get("type") == ErrorType.SPEND_CAP.value else ErrorType.BUDGET_EXCEEDED
    return StopRequested(kind, str(request.get("message") or kind.value)[:500], step)
