"""Supabase Storage as the object store.

storage3 (the storage client inside supabase-py) does the small calls: listing, removing,
signing and small uploads. Two things it does not do well enough for checkpoints are done
here with httpx directly:

- large uploads go through Supabase's resumable (TUS) endpoint in chunks read from disk
  one at a time, resuming from the server's offset when a chunk fails;
- downloads stream into a temporary file that is renamed into place (storage3's
  ``download`` returns the whole object in memory).

httpx and storage3 are imported when a ``SupabaseStorage`` is made, so ``shared`` imports
without them. The service key is sent as headers and never logged or shown in a repr.
"""
from __future__ import annotations

import base64
import logging
import mimetypes
import os
import re
import tempfile
import time
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote, urljoin

from shared.errors import StorageError
from shared.storage.base import Storage, check_key, join

log = logging.getLogger(__name__)

MiB = 1 << 20
#: Supabase's resumable endpoint takes chunks of exactly this size (the last may be shorter).
DEFAULT_CHUNK_SIZE = 6 * MiB
#: Characters Supabase Storage accepts in object names (its ``isValidKey``).
_VALID_KEY = re.compile(r"[A-Za-z0-9_/!\-.*'() &$@=;:+,?]+")
#: What the Supabase dashboard writes to make an empty folder; not an object of ours.
PLACEHOLDER = ".emptyFolderPlaceholder"
_TUS_VERSION = "1.0.0"
_RETRYABLE = {408, 409, 423, 429, 500, 502, 503, 504}
_REMOVE_BATCH = 100


class _Retryable(Exception):
    """A failure worth resuming from (network error, 5xx, offset conflict)."""


def _b64(value: str) -> str:
    return base64.b64encode(value.encode()).decode()


def _content_type(key: str) -> str:
    return mimetypes.guess_type(key)[0] or "application/octet-stream"


class SupabaseStorage(Storage):
    """Objects in one bucket of Supabase Storage, reached with the service key.

    ``chunk_size`` is both the size above which uploads go through the resumable endpoint
    and the size of each chunk (Supabase wants 6 MiB). A failed chunk is retried from the
    server's offset up to ``retries`` times in a row, ``retry_delay`` seconds apart and
    doubling. ``timeout`` applies to each network operation (connect, each read, each write).
    """

    def __init__(self, url: str, service_key: str, bucket: str = "training", *,
                 chunk_size: int = DEFAULT_CHUNK_SIZE, timeout: float = 60.0,
                 retries: int = 3, retry_delay: float = 1.0, page_size: int = 100):
        if not isinstance(url, str) or not re.match(r"^https?://[^/]+", url):
            raise StorageError(f"invalid Supabase URL {url!r}: expected https://<project>.supabase.co")
        if not service_key:
            raise StorageError("no Supabase service key given")
        if not bucket or "/" in bucket:
            raise StorageError(f"invalid Supabase bucket name {bucket!r}")
        if int(chunk_size) <= 0 or int(page_size) <= 0:
            raise StorageError(f"invalid chunk_size {chunk_size!r} or page_size {page_size!r}: "
                               "expected positive integers")
        try:
            import httpx
            from storage3 import SyncStorageClient
        except ImportError as exc:
            raise StorageError(f"STORAGE_BACKEND=supabase needs the storage3 package "
                               f"(pip install 'storage3>=2.34,<3'): {exc}") from exc
        self._httpx = httpx
        self.url = url.rstrip("/")
        self.bucket = bucket
        self.chunk_size = int(chunk_size)
        self.retries = int(retries)
        self.retry_delay = float(retry_delay)
        self.page_size = int(page_size)
        headers = {"Authorization": f"Bearer {service_key}", "apikey": service_key}
        self._http = httpx.Client(
            headers=headers, follow_redirects=True,
            timeout=httpx.Timeout(timeout, connect=min(float(timeout), 15.0)))
        # What supabase.create_client(url, key).storage builds, without the auth, realtime
        # and database clients; the trailing slash matters for how it joins signed URLs.
        self._client = SyncStorageClient(f"{self.url}/storage/v1/", headers, http_client=self._http)
        self._files = self._client.from_(bucket)

    def __repr__(self) -> str:
        return f"SupabaseStorage({self.url!r}, bucket={self.bucket!r})"

    def close(self) -> None:
        """Close the HTTP connections (the store is unusable afterwards)."""
        self._http.close()

    def __enter__(self) -> "SupabaseStorage":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- keys, URLs and errors ---------------------------------------------------------

    def _key(self, key: str) -> str:
        check_key(key)
        if not _VALID_KEY.fullmatch(key):
            raise StorageError(f"invalid storage key {key!r} for {self!r}: Supabase Storage "
                               "allows letters, digits, spaces and _/!-.*'()&$@=;:+,? only")
        return key

    def _object_url(self, key: str) -> str:
        return f"{self.url}/storage/v1/object/{quote(self.bucket, safe='')}/{quote(key, safe='/')}"

    def _error(self, action: str, key: str, *, status: int | str | None = None,
               inner: int | str | None = None, code: str | None = None,
               message: str | None = None, missing_is_error: bool = True) -> StorageError:
        """``status`` is the HTTP status; ``inner`` the statusCode in Supabase's error body,
        which can differ (a missing object is HTTP 400 with statusCode "404" on some
        versions, HTTP 404 on others)."""
        if missing_is_error and (code in ("not_found", "NoSuchKey") or message == "Object not found"
                                 or (not code and "404" in (str(status), str(inner)))):
            return StorageError(f"no object {key!r} in {self!r}")
        where = "to" if action == "upload" else "in"
        if status is None:
            status, inner = inner, None
        detail = f"HTTP {status}" if status is not None else "error"
        if inner is not None and str(inner) != str(status):
            detail += f", statusCode {inner}"
        if code and code not in (str(status), str(inner)):
            detail += f" ({code})"
        return StorageError(f"could not {action} {key!r} {where} {self!r}: {detail}: "
                            f"{message or 'no message'}")

    def _response_error(self, action: str, key: str, response, **kw) -> StorageError:
        code = message = inner = None
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict):
            code, message, inner = body.get("error"), body.get("message"), body.get("statusCode")
            if isinstance(code, dict):  # {"error": {"message": ..., "type": ...}}
                code, message = code.get("type"), code.get("message")
        else:
            message = response.text.strip()[:300] or None
        return self._error(action, key, status=response.status_code, inner=inner, code=code,
                           message=message, **kw)

    def _call(self, action: str, key: str, fn, *args, missing_is_error: bool = True, **kwargs):
        """Run a storage3 call, turning its errors (and httpx's) into StorageError."""
        from storage3.utils import StorageException
        try:
            return fn(*args, **kwargs)
        except StorageException as exc:
            # storage3 keeps the statusCode of the error body; the HTTP status is on the
            # httpx error it was raised from.
            status, cause = None, exc
            while cause is not None and status is None:
                if isinstance(cause, self._httpx.HTTPStatusError):
                    status = cause.response.status_code
                cause = cause.__cause__ or cause.__context__
            raise self._error(action, key, status=status, inner=getattr(exc, "status", None),
                              code=getattr(exc, "code", None),
                              message=getattr(exc, "message", None) or str(exc),
                              missing_is_error=missing_is_error) from None
        except self._httpx.HTTPError as exc:
            raise StorageError(f"could not {action} {key!r} in {self!r}: "
                               f"{type(exc).__name__}: {exc}") from None
        except ValueError as exc:  # a response storage3 could not parse
            raise StorageError(f"could not {action} {key!r} in {self!r}: {exc}") from None

    # -- writes ------------------------------------------------------------------------

    def put_bytes(self, key: str, data: bytes) -> int:
        key = self._key(key)
        if len(data) > self.chunk_size:
            import io
            self._tus_upload(key, io.BytesIO(data), len(data))
        else:
            self._small_upload(key, bytes(data))
        return len(data)

    def put_file(self, key: str, path: str | os.PathLike) -> int:
        key = self._key(key)
        try:
            with open(path, "rb") as fh:
                size = os.fstat(fh.fileno()).st_size
                if size > self.chunk_size:
                    self._tus_upload(key, fh, size)
                else:
                    self._small_upload(key, fh.read())
        except OSError as exc:
            raise StorageError(f"could not store {key!r} in {self!r}: {exc}") from exc
        return size

    def _small_upload(self, key: str, data: bytes) -> None:
        options = {"upsert": "true", "content-type": _content_type(key), "cache-control": "3600"}
        self._call("upload", key, self._files.upload, key, data, options, missing_is_error=False)

    def _tus_upload(self, key: str, fh: IO[bytes], size: int) -> None:
        """Upload through the resumable endpoint, one chunk in memory at a time."""
        httpx = self._httpx
        endpoint = f"{self.url}/storage/v1/upload/resumable"
        metadata = {"bucketName": self.bucket, "objectName": key,
                    "contentType": _content_type(key), "cacheControl": "3600"}
        create_headers = {
            "Tus-Resumable": _TUS_VERSION, "x-upsert": "true", "Upload-Length": str(size),
            "Upload-Metadata": ",".join(f"{k} {_b64(v)}" for k, v in metadata.items()),
        }
        failures = 0
        location: str | None = None
        offset: int | None = 0  # None: ask the server
        while True:
            try:
                if location is None:
                    r = self._http.post(endpoint, headers=create_headers)
                    if r.status_code in _RETRYABLE - {409}:
                        raise _Retryable(f"creating the upload: HTTP {r.status_code}")
                    if r.status_code not in (200, 201) or "location" not in r.headers:
                        raise self._response_error("upload", key, r, missing_is_error=False)
                    location = urljoin(endpoint + "/", r.headers["location"])
                    continue
                if offset is None:
                    offset = self._tus_offset(location, key)
                if offset >= size:
                    return
                fh.seek(offset)
                chunk = fh.read(min(self.chunk_size, size - offset))
                if len(chunk) != min(self.chunk_size, size - offset):
                    raise StorageError(f"could not upload {key!r} to {self!r}: the source "
                                       f"ended at byte {offset + len(chunk)} of {size}")
                r = self._http.patch(location, content=chunk, headers={
                    "Tus-Resumable": _TUS_VERSION, "Upload-Offset": str(offset),
                    "Content-Type": "application/offset+octet-stream"})
                del chunk
                if r.status_code in _RETRYABLE:
                    raise _Retryable(f"chunk at byte {offset}: HTTP {r.status_code} "
                                     f"{r.text.strip()[:200]}")
                if r.status_code not in (200, 204):
                    raise self._response_error("upload", key, r, missing_is_error=False)
                new = int(r.headers.get("upload-offset", -1))
                if not offset < new <= size:
                    raise _Retryable(f"chunk at byte {offset}: server reported offset {new}")
                offset, failures = new, 0
            except (httpx.TransportError, _Retryable) as exc:
                failures += 1
                problem = f"{type(exc).__name__}: {exc}" if isinstance(exc, httpx.HTTPError) else str(exc)
                if failures > self.retries:
                    raise StorageError(f"could not upload {key!r} to {self!r}: gave up after "
                                       f"{failures} failed tries in a row; last: {problem}") from None
                log.warning("upload of %r to %r: %s; resuming (try %d of %d)",
                            key, self, problem, failures, self.retries)
                time.sleep(self.retry_delay * 2 ** (failures - 1))
                offset = None

    def _tus_offset(self, location: str, key: str) -> int:
        r = self._http.head(location, headers={"Tus-Resumable": _TUS_VERSION})
        if r.status_code in _RETRYABLE:
            raise _Retryable(f"asking for the upload offset: HTTP {r.status_code}")
        if r.status_code != 200 or "upload-offset" not in r.headers:
            raise self._response_error("upload", key, r, missing_is_error=False)
        return int(r.headers["upload-offset"])

    # -- reads -------------------------------------------------------------------------

    def _download(self, key: str, out: IO[bytes]) -> None:
        httpx = self._httpx
        try:
            with self._http.stream("GET", self._object_url(key)) as r:
                if r.status_code >= 400:
                    r.read()
                    raise self._response_error("read", key, r)
                for block in r.iter_bytes(MiB):
                    out.write(block)
        except httpx.HTTPError as exc:
            raise StorageError(f"could not read {key!r} from {self!r}: "
                               f"{type(exc).__name__}: {exc}") from None

    def get_file(self, key: str, path: str | os.PathLike) -> None:
        key = self._key(key)
        dest = Path(path)
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
        except OSError as exc:
            raise StorageError(f"could not read {key!r} from {self!r} into {str(dest)!r}: {exc}") from exc
        try:
            with os.fdopen(fd, "wb") as fh:
                self._download(key, fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, dest)
        except OSError as exc:
            Path(tmp).unlink(missing_ok=True)
            raise StorageError(f"could not read {key!r} from {self!r} into {str(dest)!r}: {exc}") from exc
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def get_bytes(self, key: str) -> bytes:
        import io
        key = self._key(key)
        buf = io.BytesIO()
        self._download(key, buf)
        return buf.getvalue()

    def _level(self, folder: str, search: str = "") -> list[dict[str, Any]]:
        """One folder level, every page of it."""
        entries: list[dict[str, Any]] = []
        while True:
            options = {"limit": self.page_size, "offset": len(entries),
                       "sortBy": {"column": "name", "order": "asc"}}
            if search:
                options["search"] = search
            page = self._call("list", folder, self._files.list, folder, options,
                              missing_is_error=False)
            if not isinstance(page, list):
                raise StorageError(f"could not list {folder!r} in {self!r}: unexpected reply {page!r:.200}")
            entries.extend(page)
            if len(page) < self.page_size:
                return entries

    def _stat(self, key: str) -> dict[str, Any] | None:
        folder, _, name = self._key(key).rpartition("/")
        for entry in self._level(folder, search=name):
            if entry.get("name") == name and entry.get("id") is not None:
                return entry
        return None

    def exists(self, key: str) -> bool:
        return self._stat(key) is not None

    def size(self, key: str) -> int:
        entry = self._stat(key)
        if entry is None:
            raise StorageError(f"no object {key!r} in {self!r}")
        meta = entry.get("metadata") or {}
        value = meta.get("size", meta.get("contentLength"))
        if value is None:
            raise StorageError(f"could not read the size of {key!r} in {self!r}: "
                               f"no size in its metadata {meta!r:.200}")
        return int(value)

    def _walk(self, prefix: str) -> list[str]:
        """Every object under a folder, placeholders included, walking sub-folders."""
        if prefix:
            self._key(prefix)
        keys: list[str] = []
        folders = [prefix]
        while folders:
            folder = folders.pop()
            for entry in self._level(folder):
                name = entry.get("name")
                if not name:
                    continue
                if entry.get("id") is None:  # a folder
                    folders.append(join(folder, name))
                else:
                    keys.append(join(folder, name))
        return sorted(keys)

    def list(self, prefix: str) -> list[str]:
        return [k for k in self._walk(prefix) if k.rpartition("/")[2] != PLACEHOLDER]

    # -- deletes and links -------------------------------------------------------------

    def delete(self, key: str) -> None:
        key = self._key(key)
        self._call("delete", key, self._files.remove, [key], missing_is_error=False)

    def delete_prefix(self, prefix: str) -> None:
        keys = self._walk(prefix)
        for i in range(0, len(keys), _REMOVE_BATCH):
            batch = keys[i:i + _REMOVE_BATCH]
            self._call("delete", batch[0], self._files.remove, batch, missing_is_error=False)

    def signed_url(self, key: str, expires_in: int) -> str:
        key = self._key(key)
        if int(expires_in) <= 0:
            raise StorageError(f"invalid expiry {expires_in!r} for a link to {key!r}: "
                               "expected a positive number of seconds")
        res = self._call("sign", key, self._files.create_signed_url, key, int(expires_in))
        url = res.get("signedURL") or res.get("signedUrl")
        if not url or not url.startswith(("http://", "https://")):
            raise StorageError(f"could not sign {key!r} in {self!r}: unexpected reply {res!r:.200}")
        return url
