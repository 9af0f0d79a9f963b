"""The object-storage interface both sides use, and the key rules every backend shares.

Keys are '/'-separated relative paths. Every write is atomic: a reader sees the whole
object or none of it; writing a key again replaces it.
"""
from __future__ import annotations

import os
from abc import ABC, abstractmethod
from pathlib import PurePosixPath

from shared.errors import StorageError


def check_key(key: str) -> str:
    """Refuse keys that could escape the store.

    >>> check_key("jobs/j1/checkpoints/step-000100/manifest.json")
    'jobs/j1/checkpoints/step-000100/manifest.json'
    >>> check_key("../etc/passwd")
    Traceback (most recent call last):
    ...
    shared.errors.StorageError: invalid storage key '../etc/passwd': expected a relative path without '..'
    """
    if not isinstance(key, str):
        raise StorageError(f"invalid storage key {key!r}: expected a string")
    p = PurePosixPath(key)
    if not key or p.is_absolute() or ".." in p.parts or "\\" in key or key != str(p):
        raise StorageError(f"invalid storage key {key!r}: expected a relative path without '..'")
    return key


def join(*parts: str) -> str:
    """Join key parts, ignoring empty ones.

    >>> join("", "checkpoints", "step-1")
    'checkpoints/step-1'
    """
    return "/".join(p.strip("/") for p in parts if p and p.strip("/"))


class Storage(ABC):
    """An object store. Every failure is a ``StorageError`` naming the key and the store."""

    @abstractmethod
    def put_file(self, key: str, path: str | os.PathLike) -> int:
        """Upload a local file; returns its size in bytes."""

    @abstractmethod
    def get_file(self, key: str, path: str | os.PathLike) -> None:
        """Download to a local path (written atomically: no partial file on failure)."""

    @abstractmethod
    def put_bytes(self, key: str, data: bytes) -> int: ...

    @abstractmethod
    def get_bytes(self, key: str) -> bytes: ...

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def size(self, key: str) -> int:
        """The object's size in bytes; StorageError if there is none."""

    @abstractmethod
    def list(self, prefix: str) -> list[str]:
        """Keys under a prefix (recursively), sorted. The prefix is a folder: '' is the
        whole store, 'jobs/j1' lists 'jobs/j1/...' and not 'jobs/j10/...'."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove an object; removing one that is not there is not an error."""

    @abstractmethod
    def signed_url(self, key: str, expires_in: int) -> str | None:
        """An absolute download URL that works without credentials for ``expires_in``
        seconds, or None where the store has no such links (the caller serves the file)."""

    def delete_prefix(self, prefix: str) -> None:
        for key in self.list(prefix):
            self.delete(key)
