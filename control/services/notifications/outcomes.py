"""How a send can go wrong, and what the outbox does about it: ``SendFailed`` says whether
to try again (and, from a 429's ``Retry-After``, when) or give up; ``from_status`` sorts a
provider's answer; ``redact`` keeps the secrets (a webhook URL, a token, an API key) out of
every error text that is stored or logged."""
from __future__ import annotations

from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

MAX_DETAIL = 300          # characters of a provider's answer kept in ``last_error``


class SendFailed(Exception):
    """A send that did not go through. ``final``: retrying cannot help (a 4xx other than
    429: a bad channel, a refused sender). ``retry_after``: the provider said when to retry."""

    def __init__(self, message: str, *, final: bool = False, retry_after: float | None = None):
        super().__init__(message)
        self.message, self.final, self.retry_after = message, final, retry_after


def retry_after_seconds(value, now: datetime | None = None) -> float | None:
    """A ``Retry-After`` header in seconds: a number of seconds, or an HTTP date.

    >>> retry_after_seconds("3"), retry_after_seconds(None), retry_after_seconds("soon")
    (3.0, None, None)
    >>> retry_after_seconds("Wed, 21 Oct 2015 07:28:30 GMT",
    ...                     datetime(2015, 10, 21, 7, 28, tzinfo=timezone.utc))
    30.0
    """
    if value is None:
        return None
    text = str(value).strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    now = now or datetime.now(timezone.utc)
    return max(0.0, (when - now).total_seconds())


def header(headers, name: str):
    """A header by name, whatever its case (providers' clients hand back plain dicts).

    >>> header({"retry-after": "2"}, "Retry-After"), header(None, "Retry-After")
    ('2', None)
    """
    for key, value in (headers or {}).items():
        if key.lower() == name.lower():
            return value[0] if isinstance(value, list) and value else value
    return None


def from_status(service: str, status: int, headers=None, detail: str = "") -> SendFailed:
    """The failure a provider's HTTP answer means: 429 retries after its ``Retry-After``,
    5xx retries with backoff, any other status is final.

    >>> f = from_status("Slack", 429, {"Retry-After": "7"}, "rate_limited")
    >>> f.final, f.retry_after, f.message
    (False, 7.0, 'Slack answered 429 (rate limited): rate_limited')
    >>> from_status("SendGrid", 503).final, from_status("Slack", 404, detail="channel_not_found").final
    (False, True)
    """
    detail = (detail or "").strip()[:MAX_DETAIL]
    suffix = f": {detail}" if detail else ""
    if status == 429:
        return SendFailed(f"{service} answered 429 (rate limited){suffix}",
                          retry_after=retry_after_seconds(header(headers, "Retry-After")))
    if status >= 500:
        return SendFailed(f"{service} answered {status}{suffix}")
    return SendFailed(f"{service} answered {status}{suffix}", final=True)


def unreachable(service: str, exc: BaseException) -> SendFailed:
    """A network error (refused, timed out, reset): worth retrying."""
    return SendFailed(f"{service} unreachable: {type(exc).__name__}: {str(exc)[:MAX_DETAIL]}")


def redact(text: str, secrets) -> str:
    """``text`` with every secret (and a URL secret's path, which is what makes it one)
    replaced.

    >>> redact("POST https://hooks.slack.com/services/T1/B2/xyz failed", ["https://hooks.slack.com/services/T1/B2/xyz"])
    'POST [redacted] failed'
    >>> redact("path /services/T1/B2/xyz", ["https://hooks.slack.com/services/T1/B2/xyz"])
    'path [redacted]'
    """
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, "[redacted]")
        if "://" in secret:
            path = "/" + secret.split("://", 1)[1].partition("/")[2]
            if len(path) > 8:
                text = text.replace(path, "[redacted]")
    return text
