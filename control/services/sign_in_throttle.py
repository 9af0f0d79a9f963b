"""Sign-in throttling that an attacker cannot turn against the victim.

Failures are counted per (email, client address) pair, with backoff: the first
``FREE_FAILURES`` cost nothing, then each further one makes that pair wait twice as long as
the one before (``FIRST_WAIT_S``, doubling, at most ``MAX_WAIT_S``). Guessing someone's
password from one address therefore slows that address down, never the victim signing in
from theirs. A ceiling per client address across every email
(``SIGN_IN_MAX_FAILURES_PER_ADDRESS`` in ``ADDRESS_WINDOW_S``) stops one address guessing
many accounts. A password reset (by an admin or by the user) forgets every pair of that
email; a successful sign-in forgets its own pair (never the address's count).

The counters live in Redis (shared by every server process). When Redis cannot be reached
the throttle lets everyone through: an outage never locks people out.
"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

from flask import current_app
from redis.exceptions import RedisError

from control.services.queue import redis_connection

log = logging.getLogger(__name__)

FREE_FAILURES = 5              # per (email, address): then the waits begin
FIRST_WAIT_S = 30              # after the sixth failure; doubling with each one after it
MAX_WAIT_S = 15 * 60
PAIR_MEMORY_S = 60 * 60        # a pair's failures are forgotten an hour after its last one
ADDRESS_WINDOW_S = 15 * 60     # the per-address ceiling counts failures in this window
DEFAULT_MAX_FAILURES_PER_ADDRESS = 50


@dataclass(frozen=True)
class Refusal:
    """Why a sign-in is not even tried, and for how many more seconds."""

    reason: str                # "email" (this email from this address) or "address"
    retry_after_s: int


def normalize_email(email: str) -> str:
    return (email or "").strip().lower()


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:32]


def _keys(email: str, address: str) -> dict[str, str]:
    base = f"{current_app.config['QUEUE_NAME']}:sign-in"
    pair = _digest(normalize_email(email), address or "-")
    return {"pair": f"{base}:pair:{pair}", "lock": f"{base}:lock:{pair}",
            "email": f"{base}:email:{_digest(normalize_email(email))}",
            "address": f"{base}:address:{_digest(address or '-')}"}


def address_ceiling() -> int:
    return int(current_app.config.get("SIGN_IN_MAX_FAILURES_PER_ADDRESS", DEFAULT_MAX_FAILURES_PER_ADDRESS))


def wait_after(failures: int) -> int:
    """Seconds a pair waits after its ``failures``-th failure.

    >>> [wait_after(n) for n in (1, 5, 6, 7, 8, 12)]
    [0, 0, 30, 60, 120, 900]
    """
    if failures <= FREE_FAILURES:
        return 0
    return min(MAX_WAIT_S, FIRST_WAIT_S * 2 ** (failures - FREE_FAILURES - 1))


def refusal(email: str, address: str) -> Refusal | None:
    """A reason not to try this sign-in now, or None."""
    try:
        keys, conn = _keys(email, address), redis_connection()
        with conn.pipeline() as pipe:
            pipe.get(keys["address"])
            pipe.ttl(keys["address"])
            pipe.ttl(keys["lock"])
            from_address, address_ttl, lock_ttl = pipe.execute()
    except RedisError as exc:
        log.warning("sign-in throttle unavailable, not throttling: %s", exc)
        return None
    if int(from_address or 0) >= address_ceiling() and address_ttl > 0:
        return Refusal("address", int(address_ttl))
    if lock_ttl > 0:
        return Refusal("email", int(lock_ttl))
    return None


def record_failure(email: str, address: str) -> None:
    """Count a wrong password for this pair and this address, and start the pair's wait."""
    try:
        keys, conn = _keys(email, address), redis_connection()
        with conn.pipeline() as pipe:
            pipe.incr(keys["pair"])
            pipe.expire(keys["pair"], PAIR_MEMORY_S)
            pipe.sadd(keys["email"], keys["pair"], keys["lock"])
            pipe.expire(keys["email"], PAIR_MEMORY_S + MAX_WAIT_S)
            pipe.set(keys["address"], 0, ex=ADDRESS_WINDOW_S, nx=True)   # the window starts now
            pipe.incr(keys["address"])
            failures = int(pipe.execute()[0])
        wait = wait_after(failures)
        if wait:
            conn.set(keys["lock"], failures, ex=wait)
    except RedisError as exc:
        log.warning("sign-in throttle unavailable, failure not counted: %s", exc)


def record_success(email: str, address: str) -> None:
    """The right password: this pair starts afresh (the address's ceiling does not)."""
    try:
        keys = _keys(email, address)
        redis_connection().delete(keys["pair"], keys["lock"])
    except RedisError as exc:
        log.warning("sign-in throttle unavailable: %s", exc)


def forget_email(email: str) -> None:
    """After a password reset: every address may try this email again at once."""
    try:
        conn, key = redis_connection(), _keys(email, "")["email"]
        members = list(conn.smembers(key))
        conn.delete(key, *members)
    except RedisError as exc:
        log.warning("sign-in throttle unavailable; counters for this email not cleared: %s", exc)
