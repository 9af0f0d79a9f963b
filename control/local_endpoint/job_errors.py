"""The refusals of the local endpoint's job store: each carries the HTTP status ``server``
answers it with (in a JSON ``{"error": "..."}`` body)."""
from __future__ import annotations


class JobError(Exception):
    """A refused request; ``status`` is its HTTP status."""

    status = 400

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class BadRequest(JobError):
    status = 400


class NotFound(JobError):
    status = 404


class Conflict(JobError):
    status = 409


class Unavailable(JobError):
    status = 503
