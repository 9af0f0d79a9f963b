"""The size limits of a request body, answered one way: a 413 that names the limit in bytes
(JSON under ``/api``, the console's error page elsewhere; ``control/error_handling.py``).

- a whole body over ``MAX_CONTENT_LENGTH`` (werkzeug refuses it before reading it);
- a JSON body over ``MAX_JSON_BYTES`` (``control/api/requests.py``);
- an uploaded file over ``DATASET_MAX_BYTES``, even when the whole body fits: the form parser
  writes each file part through :class:`_CappedFile`, which stops at the limit, so an
  oversized dataset is neither kept on disk nor parsed.

The web server's own limit (waitress's ``max_request_body_size``, ``pipeline serve``) sits
above ``MAX_CONTENT_LENGTH`` by :data:`SERVER_MARGIN_BYTES`, so the app, not the server,
answers a body just over the limit."""
from __future__ import annotations

from tempfile import SpooledTemporaryFile

from flask import Request, current_app
from werkzeug.exceptions import RequestEntityTooLarge

SERVER_MARGIN_BYTES = 1024 * 1024
_IN_MEMORY_BYTES = 500 * 1024       # as werkzeug: small parts in memory, larger ones on disk


class PayloadTooLarge(RequestEntityTooLarge):
    """A 413 for ``what``, over ``limit`` bytes; ``field`` names the form field, if any."""

    def __init__(self, what: str, limit: int, field: str | None = None):
        super().__init__(f"{what} is too large: the limit is {limit} bytes")
        self.limit, self.field = limit, field


class _CappedFile(SpooledTemporaryFile):
    """A file part's storage that refuses to grow past ``limit`` bytes."""

    def __init__(self, limit: int, field: str):
        super().__init__(max_size=_IN_MEMORY_BYTES, mode="w+b")
        self._limit, self._field, self._written = limit, field, 0

    def write(self, data) -> int:
        self._written += len(data)
        if self._written > self._limit:
            self.close()
            raise PayloadTooLarge("the uploaded file", self._limit, self._field)
        return super().write(data)


class LimitedRequest(Request):
    """Flask's request, with every uploaded file part capped at ``DATASET_MAX_BYTES``. The
    only file parts the service takes are datasets, in form field ``file`` (the API's
    upload and the console's), so that is the field a 413 names."""

    def _get_file_stream(self, total_content_length, content_type, filename=None,
                         content_length=None):
        return _CappedFile(current_app.config["DATASET_MAX_BYTES"], "file")


def server_body_limit(app_config) -> int:
    """The web server's body limit: the app's, plus a margin for the app to answer in."""
    return int(app_config["MAX_CONTENT_LENGTH"]) + SERVER_MARGIN_BYTES


def too_large_message(app_config, content_length: int | None) -> str:
    """What werkzeug's own 413 was about: the whole body, or one form field in memory."""
    body_limit = app_config.get("MAX_CONTENT_LENGTH")
    if body_limit is not None and (content_length is None or content_length > body_limit):
        return f"the request body is too large: the limit is {body_limit} bytes"
    field_limit = app_config.get("MAX_FORM_MEMORY_SIZE") or 500_000
    return f"a form field is too large: the limit is {field_limit} bytes"
