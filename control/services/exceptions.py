"""The business rules' own errors; the API turns them into 403, 404, 409 and 429, the console into pages."""
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


class Forbidden(PermissionError):
    """A request the user's role does not allow (HTTP 403); the message says who may."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class Conflict(Exception):
    """A request that clashes with what exists (HTTP 409): a duplicate, or something in use."""

    def __init__(self, message: str, code: str = "conflict"):
        super().__init__(message)
        self.message, self.code = message, code


class QuotaExceeded(Exception):
    """A per-user quota is reached (HTTP 429): ``limit`` names the setting, ``value`` its
    value, ``retry_after_s`` when to try again (``Retry-After``)."""

    def __init__(self, limit: str, value: int, message: str, retry_after_s: int):
        super().__init__(message)
        self.limit, self.value, self.message = limit, value, message
        self.retry_after_s = max(1, int(retry_after_s))


class BudgetExceeded(Exception):
    """Starting the job would pass the team's monthly budget (HTTP 402, ``budget_exceeded``):
    ``figures`` holds the numbers the message names (limit, spent, committed, estimate)."""

    def __init__(self, message: str, figures: dict):
        super().__init__(message)
        self.message, self.figures = message, figures
