"""The object-storage interface both sides use, and its local-directory backend.

Keys are '/'-separated relative paths. Every write is atomic: a reader sees the whole
object or none of it. Supabase Storage comes with the control plane.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from abc import ABC, abstractmethod
from pathlib import Path, PurePosixPath

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
    @abstractmethod
    def put_file(self, key: str, path: str | os.PathLike) -> int:
        """Upload a local file; returns its size in bytes."""

    @abstractmethod
    def get_file(self, key: str, path: str | os.PathLike) -> None:
        """Download to a local path (written atomically)."""

    @abstractmethod
    def put_bytes(self, key: str, data: bytes) -> int: ...

    @abstractmethod
    def get_bytes(self, key: str) -> bytes: ...

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def list(self, prefix: str) -> list[str]:
        """Keys under a prefix (recursively), sorted."""

    @abstractmethod
    def delete(self, key: str) -> None: ...

    def delete_prefix(self, prefix: str) -> None:
        for key in self.list(prefix):
            self.delete(key)


class LocalStorage(Storage):
    """Objects as files under a root directory."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"LocalStorage({str(self.root)!r})"

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def _atomic_write(self, dest: Path, write) -> None:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as fh:
                write(fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, dest)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def put_file(self, key, path) -> int:
        src = Path(path)
        try:
            with open(src, "rb") as fin:
                self._atomic_write(self._path(key), lambda fout: shutil.copyfileobj(fin, fout, 1 << 20))
        except OSError as exc:
            raise StorageError(f"could not store {key!r}: {exc}") from exc
        return src.stat().st_size

    def get_file(self, key, path) -> None:
        src = self._path(key)
        try:
            with open(src, "rb") as fin:
                self._atomic_write(Path(path), lambda fout: shutil.copyfileobj(fin, fout, 1 << 20))
        except FileNotFoundError:
            raise StorageError(f"no object {key!r} in {self!r}") from None
        except OSError as exc:
            raise StorageError(f"could not read {key!r}: {exc}") from exc

    def put_bytes(self, key, data: bytes) -> int:
        try:
            self._atomic_write(self._path(key), lambda fh: fh.write(data))
        except OSError as exc:
            raise StorageError(f"could not store {key!r}: {exc}") from exc
        return len(data)

    def get_bytes(self, key) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise StorageError(f"no object {key!r} in {self!r}") from None
        except OSError as exc:
            raise StorageError(f"could not read {key!r}: {exc}") from exc

    def exists(self, key) -> bool:
        return self._path(key).is_file()

    def list(self, prefix: str) -> list[str]:
        base = self.root / check_key(prefix) if prefix else self.root
        if not base.is_dir():
            return []
        return sorted(str(p.relative_to(self.root).as_posix()) for p in base.rglob("*")
                      if p.is_file() and not p.name.endswith(".part"))

    def delete(self, key) -> None:
        self._path(key).unlink(missing_ok=True)


def storage_from_env(env: dict | None = None) -> Storage:
    """The worker's storage, configured from its own environment (never from job input)."""
    env = os.environ if env is None else env
    backend = env.get("STORAGE_BACKEND", "local")
    if backend == "local":
        return LocalStorage(env.get("STORAGE_LOCAL_ROOT", "storage"))
    raise StorageError(f"unknown STORAGE_BACKEND {backend!r}: expected 'local' "
                       "(Supabase Storage arrives with the control plane)")
