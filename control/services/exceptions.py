"""The business rules' own errors; the API turns them into 404 and 409, the console into pages."""
from __future__ import annotations


class NotFound(LookupError):
    """No such thing, or one the user may not see (another user's job is not found, not forbidden)."""

    def __init__(self, what: str, ident: str):
        super().__init__(f"no {what} {ident!r}")
        self.what, self.ident = what, ident


class JobStateError(Exception):
    """A request that the job's current state does not allow (HTTP 409)."""

    def __init__(self, job, action: str, expected: str, code: str = "invalid_state"):
        super().__init__(f"cannot {action} job {job.id}: it is {job.status}; {expected}")
        self.message, self.code = str(self), code      # code: the API's error code
