"""Objects as files under a root directory."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from shared.errors import StorageError
from shared.storage.base import Storage, check_key


def _is_temp(name: str) -> bool:
    return name.startswith(".") and name.endswith(".part")


class LocalStorage(Storage):
    """Objects as files under a root directory; writes go through a temporary file."""

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
        dest = self._path(key)
        try:
            with open(src, "rb") as fin:
                self._atomic_write(dest, lambda fout: shutil.copyfileobj(fin, fout, 1 << 20))
            return src.stat().st_size
        except OSError as exc:
            raise StorageError(f"could not store {key!r} in {self!r}: {exc}") from exc

    def get_file(self, key, path) -> None:
        src = self._path(key)
        try:
            with open(src, "rb") as fin:
                self._atomic_write(Path(path), lambda fout: shutil.copyfileobj(fin, fout, 1 << 20))
        except FileNotFoundError:
            raise StorageError(f"no object {key!r} in {self!r}") from None
        except OSError as exc:
            raise StorageError(f"could not read {key!r} from {self!r}: {exc}") from exc

    def put_bytes(self, key, data: bytes) -> int:
        dest = self._path(key)
        try:
            self._atomic_write(dest, lambda fh: fh.write(data))
        except OSError as exc:
            raise StorageError(f"could not store {key!r} in {self!r}: {exc}") from exc
        return len(data)

    def get_bytes(self, key) -> bytes:
        src = self._path(key)
        try:
            return src.read_bytes()
        except (FileNotFoundError, IsADirectoryError):
            raise StorageError(f"no object {key!r} in {self!r}") from None
        except OSError as exc:
            raise StorageError(f"could not read {key!r} from {self!r}: {exc}") from exc

    def _reachable(self) -> None:
        """A root that is there but not a directory is a store that is gone (an unmounted
        volume): say so, rather than answer 'nothing here'."""
        if self.root.exists() and not self.root.is_dir():
            raise StorageError(f"{self!r} is unreachable: its root is not a directory")

    def exists(self, key) -> bool:
        self._reachable()
        return self._path(key).is_file()

    def size(self, key) -> int:
        src = self._path(key)
        if not src.is_file():
            raise StorageError(f"no object {key!r} in {self!r}")
        return src.stat().st_size

    def list(self, prefix: str) -> list[str]:
        base = self.root / check_key(prefix) if prefix else self.root
        self._reachable()
        if not base.is_dir():
            return []
        return sorted(p.relative_to(self.root).as_posix() for p in base.rglob("*")
                      if p.is_file() and not _is_temp(p.name))

    def delete(self, key) -> None:
        try:
            self._path(key).unlink(missing_ok=True)
        except OSError as exc:
            raise StorageError(f"could not delete {key!r} from {self!r}: {exc}") from exc

    def signed_url(self, key: str, expires_in: int) -> None:
        """None: a local store has no links of its own; the control plane signs its own."""
        check_key(key)
        return None
