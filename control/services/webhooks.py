"""Outgoing webhooks: the URLs a user registered for job events, signed deliveries
(Standard Webhooks), retried with backoff, and a delivery log per endpoint.

- ``register`` checks the URL (http or https, no credentials in it, at most 2,048
  characters; unless ``WEBHOOK_ALLOW_PRIVATE_URLS``, a host that resolves to a public
  address only, so a webhook cannot reach the platform's own network) and makes a signing
  secret in Standard Webhooks' form, ``whsec_<base64>``. The secret is returned once; the
  row keeps it encrypted (Fernet, with a key derived from ``SECRET_KEY``), because signing
  needs it back. At most ``MAX_ENDPOINTS_PER_USER`` live endpoints a user.
- ``deliveries_for(notice)``: one delivery per live endpoint of the notice's owner that
  subscribed to its kind (``notices.fan_out`` adds them and enqueues each).
- ``deliver(id)``: one POST, signed by ``standardwebhooks`` (``webhook-id``,
  ``webhook-timestamp``, ``webhook-signature``), no redirects followed. A 2xx delivers it;
  anything else is retried after ``WEBHOOK_BACKOFF_SECONDS``, doubling, at most an hour
  (longer if the receiver's ``Retry-After`` asks), and after ``WEBHOOK_MAX_ATTEMPTS`` it is
  dead. The row is claimed for the time of one request (a lease), so the POST never holds a
  database lock and two tasks never send it at once; a task lost mid-request leaves the row
  due, for the sweep to enqueue again (``notices.pending_work``).

This module must not import ``notices`` or ``lifecycle``: ``notices`` imports it.
"""
from __future__ import annotations

import base64
import ipaddress
import json
import logging
import secrets
import socket
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import httpx
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app
from sqlalchemy import func, select
from standardwebhooks import Webhook

from control.extensions import db
from control.models import WEBHOOK_EVENTS, Notice, User, WebhookDelivery, WebhookEndpoint, iso, utcnow
from control.services import queue
from control.services.exceptions import Conflict, NotFound

log = logging.getLogger(__name__)

MAX_ENDPOINTS_PER_USER = 10
MAX_URL_LENGTH = 2048
MAX_BACKOFF_S = 3600.0
LEASE_GRACE_S = 30.0            # a claimed delivery is due again this long after its request's timeout
MAX_ERROR_CHARS = 500
USER_AGENT = "BrightRun-Webhooks/1"


class InvalidWebhookUrl(ValueError):
    """A URL that cannot be a webhook endpoint; the message says why, for the ``url`` field."""


class UnresolvableHost(InvalidWebhookUrl):
    """The URL's host does not resolve (now): refused when registering, retried when sending."""


# ------------------------------------------------------------------ the signing secret
def new_secret() -> str:
    """A Standard Webhooks signing secret: ``whsec_`` and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def _fernet() -> Fernet:
    """Fernet keyed by HKDF-SHA256 of ``SECRET_KEY``: rotating the app's key makes the
    stored secrets unreadable (their endpoints must be registered again)."""
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
               info=b"brightrun webhook signing secrets").derive(current_app.config["SECRET_KEY"].encode())
    return Fernet(base64.urlsafe_b64encode(key))


def seal(secret: str) -> str:
    return _fernet().encrypt(secret.encode()).decode()


def unseal(sealed: str) -> str:
    return _fernet().decrypt(sealed.encode()).decode()


# ------------------------------------------------------------------ the URL
def check_url(url: str, allow_private: bool) -> str:
    """The URL, if a webhook may be sent there; else ``InvalidWebhookUrl`` saying why.

    >>> check_url("https://hooks.example.com/brightrun?x=1", True)
    'https://hooks.example.com/brightrun?x=1'
    >>> check_url("ftp://example.com/", True)
    Traceback (most recent call last):
    control.services.webhooks.InvalidWebhookUrl: must be an http or https URL (got scheme 'ftp')
    >>> check_url("https://user:pw@example.com/", True)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    control.services.webhooks.InvalidWebhookUrl: must not contain credentials (user:password@): ...
    >>> check_url("http://10.1.2.3/hook", False)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    control.services.webhooks.InvalidWebhookUrl: host '10.1.2.3' is a private address (10.1.2.3): ...
    """
    if len(url) > MAX_URL_LENGTH:
        raise InvalidWebhookUrl(f"must be at most {MAX_URL_LENGTH} characters (got {len(url)})")
    if any(ch.isspace() for ch in url):
        raise InvalidWebhookUrl("must not contain spaces: percent-encode them")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidWebhookUrl(f"is not a URL: {exc}") from None
    if parts.scheme.lower() not in ("http", "https"):
        got = f"scheme {parts.scheme!r}" if parts.scheme else "no scheme"
        raise InvalidWebhookUrl(f"must be an http or https URL (got {got})")
    if parts.username is not None or parts.password is not None:
        raise InvalidWebhookUrl("must not contain credentials (user:password@): check the "
                                "signature instead, or put a token in the path")
    host = parts.hostname
    if not host:
        raise InvalidWebhookUrl("must name a host (https://host/path)")
    if not allow_private:
        for address in _addresses(host, port or (443 if parts.scheme.lower() == "https" else 80)):
            if not address.is_global or address.is_multicast:
                raise InvalidWebhookUrl(f"host {host!r} is a {_kind(address)} address ({address}): "
                                        "webhooks go to public addresses only")
    return url


def _addresses(host: str, port: int) -> list:
    """Every address ``host`` stands for: itself if it is one, else what it resolves to."""
    try:
        return [_unmapped(ipaddress.ip_address(host))]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnresolvableHost(f"host {host!r} does not resolve ({exc})") from None
    return [_unmapped(ipaddress.ip_address(info[4][0].split("%", 1)[0])) for info in infos]


def _unmapped(address):
    mapped = getattr(address, "ipv4_mapped", None)
    return mapped if mapped is not None else address


def _kind(address) -> str:
    for attr, word in (("is_unspecified", "unspecified"), ("is_loopback", "loopback"),
                       ("is_link_local", "link-local"), ("is_private", "private"),
                       ("is_multicast", "multicast")):
        if getattr(address, attr):
            return word
    return "non-public"


def _allow_private() -> bool:
    return bool(current_app.config.get("WEBHOOK_ALLOW_PRIVATE_URLS"))


# ------------------------------------------------------------------ endpoints
def register(user: User, url: str, events: list[str] | None = None,
             description: str | None = None) -> tuple[WebhookEndpoint, str]:
    """A new endpoint of ``user`` for ``events`` (default: all); returns it and its plain
    signing secret, which is never shown again. Commits."""
    url = check_url(url.strip(), _allow_private())
    chosen = list(dict.fromkeys(events)) if events else list(WEBHOOK_EVENTS)
    unknown = [e for e in chosen if e not in WEBHOOK_EVENTS]
    if unknown:
        raise ValueError(f"unknown event {unknown[0]!r}: choose among {', '.join(WEBHOOK_EVENTS)}")
    db.session.get(User, user.id, with_for_update=True)        # one count at a time per user
    live = db.session.scalar(select(func.count()).select_from(WebhookEndpoint).where(
        WebhookEndpoint.user_id == user.id, WebhookEndpoint.deleted_at.is_(None)))
    if live >= MAX_ENDPOINTS_PER_USER:
        db.session.rollback()
        raise Conflict(f"you have {live} webhook endpoints and the limit is {MAX_ENDPOINTS_PER_USER} "
                       "a user: delete one you no longer use, then add this one", code="limit_reached")
    secret = new_secret()
    row = WebhookEndpoint(user_id=user.id, url=url, events=chosen, description=description or None,
                          secret_encrypted=seal(secret), created_at=utcnow())
    db.session.add(row)
    db.session.commit()
    return row, secret


def owned_by(user: User) -> list[WebhookEndpoint]:
    """The user's live endpoints, newest first."""
    return list(db.session.scalars(select(WebhookEndpoint).where(
        WebhookEndpoint.user_id == user.id, WebhookEndpoint.deleted_at.is_(None))
        .order_by(WebhookEndpoint.created_at.desc(), WebhookEndpoint.id)))


def get_own(user: User, endpoint_id: str, *, deleted_ok: bool = False) -> WebhookEndpoint:
    """One of the user's endpoints (another user's is not found, nor a deleted one unless
    ``deleted_ok``)."""
    row = db.session.get(WebhookEndpoint, endpoint_id) if len(endpoint_id or "") <= 32 else None
    if row is None or row.user_id != user.id or (row.deleted_at is not None and not deleted_ok):
        raise NotFound("webhook endpoint", endpoint_id)
    return row


def delete(user: User, endpoint_id: str) -> WebhookEndpoint:
    """Stop sending to an endpoint: it is kept (its log stays readable) but gets nothing
    more, retries included. Commits."""
    row = get_own(user, endpoint_id)
    row.deleted_at = utcnow()
    db.session.commit()
    return row


MAX_LOG_PAGE = 100


def delivery_log(user: User, endpoint_id: str, before_id: int | None = None,
                 limit: int = 50) -> tuple[list[WebhookDelivery], int | None]:
    """An endpoint's deliveries, newest first, ``limit`` (at most ``MAX_LOG_PAGE``) at a
    time: the page, and the ``before_id`` of the next one (None: no more)."""
    row = get_own(user, endpoint_id, deleted_ok=True)
    limit = max(1, min(limit, MAX_LOG_PAGE))
    query = select(WebhookDelivery).where(WebhookDelivery.endpoint_id == row.id)
    if before_id is not None:
        query = query.where(WebhookDelivery.id < before_id)
    page = list(db.session.scalars(query.order_by(WebhookDelivery.id.desc()).limit(limit + 1)))
    more = len(page) > limit
    page = page[:limit]
    return page, (page[-1].id if more else None)


# ------------------------------------------------------------------ deliveries
def deliveries_for(notice: Notice) -> list[WebhookDelivery]:
    """The deliveries a notice becomes (not yet added to the session): one per live
    endpoint of the notice's owner subscribed to its kind."""
    if notice.kind not in WEBHOOK_EVENTS or notice.user_id is None:
        return []
    endpoints = db.session.scalars(select(WebhookEndpoint).where(
        WebhookEndpoint.user_id == notice.user_id, WebhookEndpoint.deleted_at.is_(None))
        .order_by(WebhookEndpoint.id)).all()
    payload = {"type": notice.kind, "timestamp": iso(notice.created_at), "data": notice.payload or {}}
    now = utcnow()
    return [WebhookDelivery(endpoint_id=e.id, notice_id=notice.id, event_type=notice.kind,
                            message_id="msg_" + secrets.token_hex(16), payload=payload,
                            status="pending", attempts=0, created_at=now)
            for e in endpoints if notice.kind in (e.events or ())]


def body_of(delivery: WebhookDelivery) -> str:
    """The exact JSON text sent (and signed)."""
    return json.dumps(delivery.payload, separators=(",", ":"), ensure_ascii=False)


def signed_headers(secret: str, message_id: str, body: str, at: datetime) -> dict:
    """The Standard Webhooks headers of one send of ``body``."""
    return {"webhook-id": message_id, "webhook-timestamp": str(int(at.timestamp())),
            "webhook-signature": Webhook(secret).sign(message_id, at, body),
            "content-type": "application/json", "user-agent": USER_AGENT}


def deliver(delivery_id: int) -> str:
    """POST one delivery, signed; on a failure, schedule its retry. Returns its state."""
    cfg = current_app.config
    claim = _claim(delivery_id, cfg["WEBHOOK_TIMEOUT_SECONDS"])
    if isinstance(claim, str):
        return claim
    url, secret, message_id, body, error = claim
    if error is not None:                                       # a host that does not resolve now
        return _record(delivery_id, None, error, None)
    status, error, retry_after = _post(url, secret, message_id, body, cfg["WEBHOOK_TIMEOUT_SECONDS"])
    return _record(delivery_id, status, error, retry_after)


def _claim(delivery_id: int, timeout_s: float):
    """Lock the row; if it is due, count the attempt and lease it for one request. Returns
    what to send (and why it cannot be sent this time, if so), or the reason not to send it
    at all (a string). Commits."""
    d = db.session.get(WebhookDelivery, delivery_id, with_for_update=True, populate_existing=True)
    if d is None:
        db.session.rollback()
        return "gone"
    if d.status not in ("pending", "retrying"):
        db.session.rollback()
        return d.status
    now = utcnow()
    if d.next_attempt_at is not None and d.next_attempt_at > now:
        db.session.rollback()
        return "not due"
    endpoint = d.endpoint
    if endpoint.deleted_at is not None:
        d.status, d.last_error, d.next_attempt_at = "dead", "not sent: the endpoint was deleted", None
        db.session.commit()
        return "dead"
    error = None
    try:
        url = check_url(endpoint.url, _allow_private())        # checked again: DNS can change
        secret = unseal(endpoint.secret_encrypted)
    except UnresolvableHost as exc:
        url, secret, error = endpoint.url, "", f"not sent: {exc}"
    except (InvalidWebhookUrl, InvalidToken) as exc:
        d.status, d.next_attempt_at = "dead", None
        d.last_error = (f"not sent: url {exc}" if isinstance(exc, InvalidWebhookUrl) else
                        "not sent: the signing secret cannot be read (SECRET_KEY changed): "
                        "register the endpoint again")
        db.session.commit()
        return "dead"
    d.attempts += 1
    d.next_attempt_at = now + timedelta(seconds=timeout_s + LEASE_GRACE_S)
    message_id, body = d.message_id, body_of(d)
    db.session.commit()
    return url, secret, message_id, body, error


def _post(url: str, secret: str, message_id: str, body: str, timeout_s: float):
    """(status or None, error or None, the receiver's Retry-After in seconds or None). The
    answer's body is never read: a receiver cannot make us hold megabytes."""
    try:
        with httpx.Client(timeout=timeout_s, follow_redirects=False, trust_env=False) as client:
            with client.stream("POST", url, content=body.encode(),
                               headers=signed_headers(secret, message_id, body, utcnow())) as reply:
                if 200 <= reply.status_code < 300:
                    return reply.status_code, None, None
                return (reply.status_code, f"the receiver answered HTTP {reply.status_code}",
                        retry_after_s(reply.headers.get("retry-after")))
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        return None, f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS], None


def retry_after_s(value: str | None) -> float | None:
    """A ``Retry-After`` header in seconds (delta-seconds or an HTTP date), or None.

    >>> retry_after_s("120"), retry_after_s(None), retry_after_s("soon")
    (120.0, None, None)
    """
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, (parsedate_to_datetime(value) - utcnow()).total_seconds())
    except (TypeError, ValueError):
        return None


def backoff_s(attempts: int, base_s: float, retry_after: float | None = None) -> float:
    """The wait before the next try after ``attempts`` failed ones: ``base_s`` doubling, at
    most an hour; a receiver's ``Retry-After`` lengthens it (within the hour).

    >>> [backoff_s(n, 5) for n in (1, 2, 3)], backoff_s(20, 5), backoff_s(1, 5, 90)
    ([5.0, 10.0, 20.0], 3600.0, 90.0)
    """
    wait = min(base_s * 2 ** min(attempts - 1, 30), MAX_BACKOFF_S)
    if retry_after is not None:
        wait = max(wait, min(retry_after, MAX_BACKOFF_S))
    return float(wait)


def _record(delivery_id: int, status: int | None, error: str | None, retry_after: float | None) -> str:
    """What one send came to: delivered, a retry scheduled, or dead. Commits."""
    cfg = current_app.config
    d = db.session.get(WebhookDelivery, delivery_id, with_for_update=True, populate_existing=True)
    if d is None:
        db.session.rollback()
        return "gone"
    d.response_status = status
    now = utcnow()
    if error is None:
        d.status, d.delivered_at, d.next_attempt_at, d.last_error = "delivered", now, None, None
        db.session.commit()
        return "delivered"
    d.last_error = error
    if d.attempts >= cfg["WEBHOOK_MAX_ATTEMPTS"] or d.endpoint.deleted_at is not None:
        d.status, d.next_attempt_at = "dead", None
        db.session.commit()
        log.warning("webhook delivery %s to endpoint %s is dead after %d attempts: %s",
                    d.id, d.endpoint_id, d.attempts, error)
        return "dead"
    wait = backoff_s(d.attempts, cfg["WEBHOOK_BACKOFF_SECONDS"], retry_after)
    d.status, d.next_attempt_at = "retrying", now + timedelta(seconds=wait)
    db.session.commit()
    try:
        queue.enqueue_notify(queue.DELIVER_WEBHOOK, delivery_id, delay=wait)
    except Exception as exc:  # noqa: BLE001 - Redis down: the sweep enqueues it again once due
        log.warning("webhook delivery %s: retry not enqueued (%s); the sweep will", delivery_id, exc)
    return "retrying"
