"""Email: a message as HTML and text (jinja2 templates beside this module), and its
sending through SendGrid (``SendGridAPIClient`` with a ``Mail`` from ``EMAIL_FROM``, both
parts). One try a call: the outbox retries SendGrid's 5xx and network errors with backoff.
The HTTP client under sendgrid prints the API key's header at debug level: its logger is
kept at warnings."""
from __future__ import annotations

import json
import logging
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from python_http_client.exceptions import HTTPError
from sendgrid import SendGridAPIClient
from sendgrid.helpers.mail import Mail

from control.services.notifications.content import Message
from control.services.notifications.outcomes import SendFailed, from_status, unreachable

logging.getLogger("python_http_client.client").setLevel(logging.WARNING)
SENDGRID_HOST = "https://api.sendgrid.com"
#: The accent colour of each tone.
COLOURS = {"good": "#1a7f37", "bad": "#cf222e", "warn": "#9a6700", "info": "#0969da"}

_env = Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"),
                   autoescape=select_autoescape(["html"]), undefined=StrictUndefined,
                   trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)


def render(msg: Message) -> dict:
    """The email's ``html`` and ``text``."""
    context = {"m": msg, "colour": COLOURS.get(msg.tone, COLOURS["info"])}
    return {"html": _env.get_template("email.html").render(context),
            "text": _env.get_template("email.txt").render(context)}


def errors_of(body) -> str:
    """SendGrid's error messages from its answer's body.

    >>> errors_of(b'{"errors": [{"message": "The from address does not match a verified Sender Identity"}]}')
    'The from address does not match a verified Sender Identity'
    >>> errors_of(b"<html>bad gateway</html>")
    '<html>bad gateway</html>'
    """
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body or "")
    try:
        errors = json.loads(text).get("errors") or []
        return "; ".join(str(e.get("message")) for e in errors if isinstance(e, dict)) or text
    except (ValueError, AttributeError):
        return text


def send(api_key: str, host: str | None, sender: str | None, to: str, subject: str, body: dict,
         timeout: float) -> None:
    """Send one email; ``SendFailed`` unless SendGrid accepted it."""
    if not sender:
        raise SendFailed("EMAIL_FROM is not set: SendGrid needs a verified sender address", final=True)
    mail = Mail(from_email=sender, to_emails=to, subject=subject,
                plain_text_content=body.get("text") or "", html_content=body.get("html") or None)
    client = SendGridAPIClient(api_key=api_key, host=(host or SENDGRID_HOST).rstrip("/"))
    client.client.timeout = timeout
    try:
        client.send(mail)
    except HTTPError as exc:
        raise from_status("SendGrid", exc.status_code, exc.headers, errors_of(exc.body)) from None
    except Exception as exc:  # noqa: BLE001 - a network error of any kind: retried
        raise unreachable("SendGrid", exc) from None
