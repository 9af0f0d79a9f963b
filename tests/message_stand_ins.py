"""Stand-ins for Slack and SendGrid on real localhost ports, in threads: the network edge
of the notifications, which the real ``slack-sdk`` and ``sendgrid`` clients are pointed at.

- ``SlackStandIn``: an incoming webhook (``POST /services/...``, answering ``ok`` as text,
  as Slack does) and the Web API's ``POST /api/chat.postMessage`` (a JSON answer with
  ``ok``; a token other than ``token`` is refused with ``invalid_auth``).
- ``SendGridStandIn``: ``POST /v3/mail/send`` (202 with no body; an API key other than
  ``api_key`` is a 401 in SendGrid's error shape).

A test scripts the next answers with ``plan(Answer(...), ...)``, used in order, then 2xx
again. Every request is recorded in ``requests`` (``Received``: path, headers, JSON body,
the status it was answered with), failed ones included; ``delivered`` holds the accepted.

    with SlackStandIn() as slack:
        slack.plan(Answer(500), Answer(429, {"Retry-After": "3"}))
        WebhookClient(slack.webhook_url).send(text="hi")     # answered 500
"""
from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field

from werkzeug.wrappers import Request, Response

from tests.local_server import LocalServer

WEBHOOK_PATH = "/services/T0BRIGHT/B0RUN/xoxsecretwebhookpath42"


@dataclass(frozen=True)
class Answer:
    """One answer to give: a status, headers, and a body (JSON when it is a dict)."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: dict | str | None = None


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]      # lower-cased names
    body: dict
    status: int                  # what the stand-in answered
    answer: dict | str | None = None

    @property
    def accepted(self) -> bool:
        """Answered 2xx, and not Slack's ``{"ok": false}``."""
        refused = isinstance(self.answer, dict) and self.answer.get("ok") is False
        return 200 <= self.status < 300 and not refused


class _StandIn(LocalServer):
    def __init__(self):
        self.requests: list[Received] = []
        self._plan: list[tuple[str | None, Answer]] = []
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return self.address

    def plan(self, *answers: Answer, path: str | None = None) -> None:
        """Answer the next requests (to ``path`` only, if given) with ``answers``, in order."""
        with self._lock:
            self._plan.extend((path, a) for a in answers)

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self._plan.clear()

    @property
    def delivered(self) -> list[Received]:
        return [r for r in self.requests if r.accepted]

    def _next(self, request: Request) -> Answer | None:
        with self._lock:
            for i, (path, answer) in enumerate(self._plan):
                if path is None or path == request.path:
                    del self._plan[i]
                    return answer
            return None

    def _record(self, request: Request, answer: Answer) -> None:
        try:
            body = json.loads(request.get_data(as_text=True) or "{}")
        except ValueError:
            body = {"raw": request.get_data(as_text=True)}
        with self._lock:
            self.requests.append(Received(request.path, {k.lower(): v for k, v in request.headers.items()},
                                          body, answer.status, answer.body))

    @staticmethod
    def _respond(answer: Answer) -> Response:
        body = answer.body
        if isinstance(body, dict):
            return Response(json.dumps(body), answer.status, answer.headers, content_type="application/json")
        return Response(body or "", answer.status, answer.headers, content_type="text/plain")

    def __call__(self, environ, start_response):
        request = Request(environ)
        answer = self._next(request) or self.default(request)
        self._record(request, answer)
        return self._respond(answer)(environ, start_response)

    def default(self, request: Request) -> Answer:
        raise NotImplementedError


class SlackStandIn(_StandIn):
    name = "slack-stand-in"
    token = "xoxb-stand-in-bot-token-5f2a"

    @property
    def webhook_url(self) -> str:
        return self.url + WEBHOOK_PATH

    @property
    def api_url(self) -> str:
        return self.url + "/api/"

    @property
    def post_message_path(self) -> str:
        return "/api/chat.postMessage"

    def default(self, request: Request) -> Answer:
        if request.method != "POST":
            return Answer(405, body="method_not_allowed")
        if request.path == WEBHOOK_PATH:
            return Answer(200, body="ok")
        if request.path.startswith("/services/"):
            return Answer(404, body="no_service")
        if request.path == "/api/chat.postMessage":
            if request.headers.get("Authorization") != f"Bearer {self.token}":
                return Answer(200, body={"ok": False, "error": "invalid_auth"})
            channel = (request.get_json(silent=True) or {}).get("channel")
            return Answer(200, body={"ok": True, "channel": channel, "ts": "1700000000.000100"})
        return Answer(404, body={"ok": False, "error": "unknown_method"})

    def webhook_messages(self) -> list[dict]:
        return [r.body for r in self.delivered if r.path == WEBHOOK_PATH]

    def bot_messages(self) -> list[dict]:
        return [r.body for r in self.delivered if r.path == "/api/chat.postMessage"]


class SendGridStandIn(_StandIn):
    name = "sendgrid-stand-in"
    api_key = "SG.stand-in-key.9c1d"

    def default(self, request: Request) -> Answer:
        if request.path != "/v3/mail/send" or request.method != "POST":
            return Answer(404, body={"errors": [{"message": "not found"}]})
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return Answer(401, body={"errors": [{"message": "The provided authorization grant is invalid"}]})
        return Answer(202)

    def emails(self) -> list[dict]:
        """Each accepted email: ``to``, ``from``, ``subject``, ``text`` and ``html``."""
        out = []
        for r in self.delivered:
            parts = {c["type"]: c["value"] for c in r.body.get("content", [])}
            for p in r.body.get("personalizations", []):
                for to in p.get("to", []):
                    out.append({"to": to["email"], "from": r.body["from"]["email"], "subject": r.body.get("subject"),
                                "text": parts.get("text/plain", ""), "html": parts.get("text/html", "")})
        return out
