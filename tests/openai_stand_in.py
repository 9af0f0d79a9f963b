"""A stand-in for an OpenAI-compatible chat endpoint (what vLLM, llama.cpp's server or
OpenAI itself serve), on a real localhost port in a thread.

The network edge of the automatic judge: it serves ``POST /v1/chat/completions`` with the
shape the official ``openai`` client reads (``id``, ``object: "chat.completion"``,
``created``, ``model``, ``choices[0].message.content``, ``finish_reason``, ``usage``), and
OpenAI's error shape (``{"error": {"message", "type", "code"}}``) for a status it is told to
send. Any other path is a 404.

A test scripts it with one function of the request: ``reply(request)`` returns the
assistant's text (a ``str``), an ``Error(status, headers)``, or a ``Raw(body, content_type)``
sent as it is with a 200 (what a proxy's login page or another API would send). Every request it received is
recorded, in arrival order, in ``requests`` (``ChatRequest``: its number, headers, body,
messages), including the ones it answered with an error.

    with OpenAIStandIn(lambda request: verdict("A")) as judge:
        client = openai.OpenAI(base_url=judge.url, api_key="k")
"""
from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from werkzeug.wrappers import Request, Response

from tests.local_server import LocalServer

CHAT_PATH = "/v1/chat/completions"


@dataclass(frozen=True)
class ChatRequest:
    """One request as the stand-in received it."""

    number: int                       # 0 for the first request this stand-in received
    headers: dict[str, str]           # lower-cased names
    body: dict

    @property
    def messages(self) -> list[dict]:
        return self.body.get("messages") or []

    @property
    def text(self) -> str:
        """Every message's content, one after another."""
        return "\n".join(str(m.get("content") or "") for m in self.messages)

    @property
    def last_user_message(self) -> str:
        return next((str(m.get("content") or "") for m in reversed(self.messages)
                     if m.get("role") == "user"), "")

    def section(self, tag: str) -> str:
        """The text between ``<tag>`` and ``</tag>`` in the messages ("" when absent)."""
        match = re.search(rf"<{tag}>(.*?)</{tag}>", self.text, re.S)
        return match.group(1).strip() if match else ""


@dataclass(frozen=True)
class Error:
    """An HTTP error to answer with, in OpenAI's error shape."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    message: str = "error from the stand-in"


@dataclass(frozen=True)
class Raw:
    """A 200 whose body is not a chat completion."""

    body: str
    content_type: str = "text/html"


def verdict(winner: str, reason: str = "the stand-in's reason") -> str:
    """A judge's JSON verdict, as a model would write it."""
    return json.dumps({"winner": winner, "reason": reason})


def rate_limited(times: int, then: Callable[[ChatRequest], str | Error | Raw],
                 retry_after: str = "0") -> Callable[[ChatRequest], str | Error | Raw]:
    """A script that answers 429 (``Retry-After``) to the first ``times`` requests, then
    as ``then`` does."""
    def reply(request: ChatRequest) -> str | Error:
        if request.number < times:
            return Error(429, {"Retry-After": retry_after}, "rate limited")
        return then(request)
    return reply


class OpenAIStandIn(LocalServer):
    """An OpenAI-compatible chat endpoint whose every answer ``reply`` decides."""

    name = "openai-stand-in"

    def __init__(self, reply: Callable[[ChatRequest], str | Error | Raw],
                 model: str = "judge-model"):
        self.reply = reply
        self.model = model
        self.requests: list[ChatRequest] = []
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        """The base URL a client is given (with ``/v1``)."""
        return f"{self.address}/v1"

    def __call__(self, environ, start_response):
        request = Request(environ)
        if request.path != CHAT_PATH or request.method != "POST":
            return _error(404, f"no route {request.method} {request.path}")(environ, start_response)
        try:
            body = json.loads(request.get_data() or b"null")
        except ValueError:
            return _error(400, "the body is not JSON")(environ, start_response)
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return _error(400, "'messages' is required")(environ, start_response)
        with self._lock:
            headers = {k.lower(): v for k, v in request.headers.items()}
            chat = ChatRequest(len(self.requests), headers, body)
            self.requests.append(chat)
        answer = self.reply(chat)
        if isinstance(answer, Error):
            return _error(answer.status, answer.message, answer.headers)(environ, start_response)
        if isinstance(answer, Raw):
            return Response(answer.body, content_type=answer.content_type)(environ, start_response)
        return self._completion(body, answer)(environ, start_response)

    def _completion(self, body: dict, content: str) -> Response:
        tokens = len(content.split())
        return Response(json.dumps({
            "id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion",
            "created": int(time.time()), "model": body.get("model") or self.model,
            "system_fingerprint": "stand-in",
            "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                         "message": {"role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": 10, "completion_tokens": tokens,
                      "total_tokens": 10 + tokens},
        }), status=200, mimetype="application/json")


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    kind = {401: "authentication_error", 404: "not_found_error", 429: "rate_limit_exceeded"}.get(
        status, "server_error" if status >= 500 else "invalid_request_error")
    return Response(json.dumps({"error": {"message": message, "type": kind, "param": None,
                                          "code": str(status)}}),
                    status=status, headers=headers or {}, mimetype="application/json")
