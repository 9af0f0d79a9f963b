"""The daily digest: for each user who wants one, once a day from ``DIGEST_HOUR_UTC``, a
``digest`` notice (jobs finished, failed and running, and spend). The sweep calls
``schedule``. (Being built: issue 14.)"""
from __future__ import annotations


def schedule(now=None) -> int:
    """Make today's digest notices that are due and not made yet; how many were made."""
    return 0
