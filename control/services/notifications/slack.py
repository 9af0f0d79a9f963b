"""Slack: a message as Block Kit (``slack_sdk.models.blocks``), and its sending, through
the team's incoming webhook (``WebhookClient``, destination ``team-webhook``) or the bot
(``WebClient.chat_postMessage`` to a channel). One try a call: the outbox retries, with
backoff and Slack's ``Retry-After``, so the clients' own retry handlers are off. Their
loggers are quiet: at debug level they print the webhook URL and the bot's headers."""
from __future__ import annotations

import logging

from slack_sdk import WebClient, WebhookClient
from slack_sdk.errors import SlackApiError
from slack_sdk.models.blocks import (ActionsBlock, ButtonElement, ContextBlock, HeaderBlock, MarkdownTextObject,
                                     PlainTextObject, SectionBlock)

from control.services.notifications.content import Message
from control.services.notifications.outcomes import SendFailed, from_status, unreachable

TEAM_WEBHOOK = "team-webhook"
QUIET = logging.getLogger("brightrun.notifications.slack_sdk")
QUIET.setLevel(logging.WARNING)
HEADER_MAX, TEXT_MAX, FIELD_MAX, FIELDS_MAX = 150, 3000, 2000, 10


def escape(text: str) -> str:
    """Slack's mrkdwn escapes: what people wrote never becomes a link or a mention.

    >>> escape("<!channel> & <http://x|y>")
    '&lt;!channel&gt; &amp; &lt;http://x|y&gt;'
    """
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def cut(text: str, limit: int) -> str:
    """
    >>> cut("abcdef", 4)
    'abc…'
    """
    return text if len(text) <= limit else text[:limit - 1] + "…"


def blocks(msg: Message) -> list[dict]:
    """The message as Block Kit: a header, the headline, the facts side by side, the notes
    (a failure's cause and fix), the lists (a digest's jobs), buttons to the links, a footer."""
    out = [HeaderBlock(text=PlainTextObject(text=cut(f"{msg.emoji} {msg.subject}", HEADER_MAX), emoji=True)),
           SectionBlock(text=MarkdownTextObject(text=cut(escape(msg.headline), TEXT_MAX)))]
    fields = [MarkdownTextObject(text=cut(f"*{escape(label)}*\n{escape(value)}", FIELD_MAX))
              for label, value in msg.fields]
    for start in range(0, len(fields), FIELDS_MAX):
        out.append(SectionBlock(fields=fields[start:start + FIELDS_MAX]))
    for label, text in msg.notes:
        out.append(SectionBlock(text=MarkdownTextObject(text=cut(f"*{escape(label)}*\n{escape(text)}", TEXT_MAX))))
    for title, items in msg.lists:
        lines = [f"• <{url}|{escape(text)}>" if url else f"• {escape(text)}" for text, url in items] or ["none"]
        out.append(SectionBlock(text=MarkdownTextObject(
            text=cut(f"*{escape(title)}* ({len(items)})\n" + "\n".join(lines), TEXT_MAX))))
    if msg.links:
        out.append(ActionsBlock(elements=[
            ButtonElement(text=PlainTextObject(text=label, emoji=False), url=url, action_id=f"link-{i}",
                          style="primary" if i == 0 else None)
            for i, (label, url) in enumerate(msg.links)]))
    if msg.footer:
        manage = f" · <{msg.manage_url}|change what you hear of>" if msg.manage_url else ""
        out.append(ContextBlock(elements=[MarkdownTextObject(text=escape(msg.footer) + manage)]))
    return [b.to_dict() for b in out]


def send_webhook(url: str, body: dict, timeout: float) -> None:
    """Post to the team's incoming webhook; ``SendFailed`` unless Slack answered 200."""
    client = WebhookClient(url, timeout=timeout, logger=QUIET, retry_handlers=[])
    try:
        response = client.send(text=body.get("text"), blocks=body.get("blocks"))
    except Exception as exc:  # noqa: BLE001 - a network error of any kind: retried
        raise unreachable("Slack", exc) from None
    if response.status_code != 200:
        raise from_status("Slack", response.status_code, response.headers, response.body)


def send_bot(token: str, base_url: str | None, channel: str, body: dict, timeout: float) -> None:
    """Post as the bot to ``channel``; ``SendFailed`` on any refusal (``channel_not_found``
    and its kind come back as a 200 with ``ok: false``: final)."""
    base = (base_url or WebClient.BASE_URL).rstrip("/") + "/"
    client = WebClient(token=token, base_url=base, timeout=timeout, logger=QUIET, retry_handlers=[])
    try:
        client.chat_postMessage(channel=channel, text=body.get("text"), blocks=body.get("blocks"))
    except SlackApiError as exc:
        response = exc.response
        detail = str(response.get("error") or "") if isinstance(response.data, dict) else ""
        if response.status_code == 200:
            raise SendFailed(f"Slack refused the message: {detail or 'not ok'}", final=True) from None
        raise from_status("Slack", response.status_code, response.headers, detail) from None
    except Exception as exc:  # noqa: BLE001 - a network error of any kind: retried
        raise unreachable("Slack", exc) from None
