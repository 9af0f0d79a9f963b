"""A store that rides out an outage: each call is tried again, with growing pauses, until it
works or ``patience_s`` has passed. Every call of the interface is idempotent (a write
replaces the whole object), so trying one again is safe. An object that is not there is an
answer, not an outage, and is not retried; nor is a request that can never work."""
from __future__ import annotations

import logging
import time

from shared.errors import StorageError
from shared.storage.base import Storage

log = logging.getLogger(__name__)


def is_missing(exc: StorageError) -> bool:
    return str(exc).startswith("no object")


PERMANENT = ("invalid ", "no Supabase", "STORAGE_BACKEND", " 400", " 401", " 403", " 404", " 413",
             "No such file or directory: ")


def is_transient(exc: StorageError) -> bool:
    """An outage (network, 5xx, an unreachable volume) rather than a request that can never
    work (a bad key, a refused credential, a missing object, a damaged file).

    >>> is_transient(StorageError("could not store 'a' in X: ConnectError: [Errno 111] Connection refused"))
    True
    >>> is_transient(StorageError("could not read 'a' from X: 403 Forbidden: invalid signature"))
    False
    """
    text = str(exc)
    return not is_missing(exc) and not any(marker in text for marker in PERMANENT)


class RetryingStorage(Storage):
    """Wraps another store; ``sleep`` and ``clock`` are for tests.

    >>> class Flaky(Storage):
    ...     calls = 0
    ...     def get_bytes(self, key):
    ...         Flaky.calls += 1
    ...         if Flaky.calls < 3:
    ...             raise StorageError("could not read: connection refused")
    ...         return b"ok"
    ...     put_file = get_file = put_bytes = exists = size = list = delete = signed_url = None
    >>> RetryingStorage(Flaky(), patience_s=10, sleep=lambda s: None).get_bytes("k"), Flaky.calls
    (b'ok', 3)
    """

    def __init__(self, inner: Storage, patience_s: float = 300.0, *, first_pause_s: float = 0.5,
                 sleep=time.sleep, clock=time.monotonic):
        self.inner, self.patience_s, self.first_pause_s = inner, patience_s, first_pause_s
        self._sleep, self._clock = sleep, clock

    def __repr__(self) -> str:
        return f"RetryingStorage({self.inner!r})"

    def _call(self, name: str, *args):
        deadline = self._clock() + self.patience_s
        pause = self.first_pause_s
        while True:
            try:
                return getattr(self.inner, name)(*args)
            except StorageError as exc:
                if not is_transient(exc) or self._clock() + pause > deadline:
                    raise
                log.warning("storage %s failed (%s); trying again in %.1f s", name, exc, pause)
            self._sleep(pause)
            pause = min(pause * 2, 15.0)

    def put_file(self, key, path):
        return self._call("put_file", key, path)

    def get_file(self, key, path):
        return self._call("get_file", key, path)

    def put_bytes(self, key, data):
        return self._call("put_bytes", key, data)

    def get_bytes(self, key):
        return self._call("get_bytes", key)

    def exists(self, key):
        return self._call("exists", key)

    def size(self, key):
        return self._call("size", key)

    def list(self, prefix):
        return self._call("list", prefix)

    def delete(self, key):
        return self._call("delete", key)

    def signed_url(self, key, expires_in):
        return self._call("signed_url", key, expires_in)
