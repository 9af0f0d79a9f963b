"""A fake of Supabase Storage's HTTP API, served on a real localhost port in a thread.

The network edge we cannot reach from tests. It implements only what SupabaseStorage calls,
with the shapes storage3 2.x reads and Supabase documents:

- ``POST|PUT /storage/v1/object/{bucket}/{path}`` upload (multipart ``file`` field or a raw
  body; ``x-upsert: true`` to replace) -> ``{"Id", "Key": "bucket/path"}``
- ``GET /storage/v1/object[/authenticated]/{bucket}/{path}`` download
- ``POST /storage/v1/object/list/{bucket}`` ``{prefix, limit, offset, sortBy, search}``: one
  folder level; folders are entries whose ``id`` (and metadata) is null
- ``DELETE /storage/v1/object/{bucket}`` ``{"prefixes": [...]}`` -> the removed objects
- ``POST /storage/v1/object/sign/{bucket}/{path}`` ``{"expiresIn"}`` ->
  ``{"signedURL": "/object/sign/{bucket}/{path}?token=..."}``, and ``GET`` of that URL
  (no credentials; the token names the object and its expiry)
- TUS 1.0.0 at ``/storage/v1/upload/resumable``: ``POST`` creates (201 + Location),
  ``PATCH`` appends at ``Upload-Offset`` (204 + the new offset; 409 on a wrong offset, 413
  on a chunk over 6 MiB), ``HEAD`` tells the offset.

Errors of the object routes come as Supabase's storage API sends them on the versions that
do so: HTTP 400 with the meaningful code in the body, e.g. a missing object is
``400 {"statusCode": "404", "error": "not_found", "message": "Object not found"}``.
Set ``real_status_codes = True`` for the newer behaviour (HTTP status = statusCode).

It records what it saw (``requests``, ``max_body``, ``patch_sizes``) and can break the next
request of a kind once (``fail_next``) so tests can watch the client recover.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from urllib.parse import quote

from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from tests.local_server import LocalServer

MiB = 1 << 20
TUS_CHUNK_LIMIT = 6 * MiB
VALID_KEY = re.compile(r"[A-Za-z0-9_/!\-.*'() &$@=;:+,?]+")


@dataclass
class StoredObject:
    data: bytes
    content_type: str
    cache_control: str = "max-age=3600"
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    created_at: str = field(default_factory=lambda: _now_iso())

    def entry(self, name: str) -> dict:
        return {
            "name": name, "id": self.id, "updated_at": self.created_at,
            "created_at": self.created_at, "last_accessed_at": self.created_at,
            "metadata": {
                "eTag": f'"{hashlib.md5(self.data).hexdigest()}"', "size": len(self.data),
                "mimetype": self.content_type, "cacheControl": self.cache_control,
                "lastModified": self.created_at, "contentLength": len(self.data),
                "httpStatusCode": 200,
            },
        }


@dataclass
class TusUpload:
    bucket: str
    name: str
    length: int
    content_type: str
    upsert: bool
    data: bytearray = field(default_factory=bytearray)


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class _Abort(Exception):
    def __init__(self, response: Response):
        self.response = response


class FakeSupabase(LocalServer):
    """Supabase Storage for one project: buckets of objects, resumable uploads, signed links."""

    name = "fake-supabase"

    def __init__(self, service_key: str = "fake-service-role-key", buckets=("training",)):
        self.service_key = service_key
        self.buckets = set(buckets)
        self._secret = uuid.uuid4().bytes
        self._lock = threading.Lock()
        self.reset()
        self._map = Map([
            Rule("/storage/v1/object/list/<bucket>", endpoint="list", methods=["POST"]),
            Rule("/storage/v1/object/sign/<bucket>/<path:name>", endpoint="sign",
                 methods=["POST"]),
            Rule("/storage/v1/object/sign/<bucket>/<path:name>", endpoint="signed_get",
                 methods=["GET"]),
            Rule("/storage/v1/object/authenticated/<bucket>/<path:name>", endpoint="download",
                 methods=["GET"]),
            Rule("/storage/v1/object/<bucket>/<path:name>", endpoint="download", methods=["GET"]),
            Rule("/storage/v1/object/<bucket>/<path:name>", endpoint="upload",
                 methods=["POST", "PUT"]),
            Rule("/storage/v1/object/<bucket>", endpoint="remove", methods=["DELETE"]),
            Rule("/storage/v1/upload/resumable", endpoint="tus_create", methods=["POST"]),
            Rule("/storage/v1/upload/resumable/<upload_id>", endpoint="tus_patch",
                 methods=["PATCH"]),
            Rule("/storage/v1/upload/resumable/<upload_id>", endpoint="tus_head",
                 methods=["HEAD"]),
        ], strict_slashes=False)

    # -- test-facing state ---------------------------------------------------------------

    def reset(self) -> None:
        with self._lock:
            self.objects: dict[tuple[str, str], StoredObject] = {}
            self.uploads: dict[str, TusUpload] = {}
            self.requests: list[tuple[str, str, int]] = []  # (method, path, body bytes)
            self.patch_sizes: list[int] = []  # every TUS PATCH body, failed ones too
            self.failures: dict[str, list] = {}  # what -> [how, keep, times left]
            self.failed: list[str] = []
            self.clock_offset = 0.0
            self.file_size_limit: int | None = None
            self.real_status_codes = False

    @property
    def max_body(self) -> int:
        return max((n for _, _, n in self.requests), default=0)

    def count(self, method: str, path_prefix: str = "") -> int:
        return sum(1 for m, p, _ in self.requests if m == method and p.startswith(path_prefix))

    def fail_next(self, what: str, how: str = "disconnect", keep: int | None = None,
                  times: int = 1) -> None:
        """Break the next ``times`` requests of a kind.

        ``what``: "tus_patch" or "download". ``how``: "disconnect" (the connection drops
        after ``keep`` bytes: of a PATCH, those bytes are stored, as a real server keeps
        what reached it; of a download, that much is sent) or "error" (a 502 from the
        gateway, nothing stored).
        """
        with self._lock:
            self.failures[what] = [how, keep, times]

    def advance(self, seconds: float) -> None:
        """Move the fake's clock (signed-link expiry) forward."""
        self.clock_offset += seconds

    def now(self) -> float:
        return time.time() + self.clock_offset

    def put(self, bucket: str, name: str, data: bytes, content_type="application/octet-stream"):
        self.objects[(bucket, name)] = StoredObject(bytes(data), content_type)

    def get(self, name: str, bucket: str = "training") -> bytes | None:
        obj = self.objects.get((bucket, name))
        return None if obj is None else obj.data

    # -- serving ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return self.address

    def __call__(self, environ, start_response):
        request = Request(environ)
        request.max_form_memory_size = None
        adapter = self._map.bind_to_environ(environ)
        try:
            endpoint, args = adapter.match()
        except Exception:
            resp = self._json(404, {"statusCode": "404", "error": "not_found",
                                    "message": f"Route {request.method}:{request.path} not found"})
            return resp(environ, start_response)
        try:
            resp = getattr(self, "_" + endpoint)(request, **args)
        except _Abort as abort:
            resp = abort.response
        finally:
            request.close()  # uploaded form files
        return resp(environ, start_response)

    # -- helpers ---------------------------------------------------------------------------

    def _record(self, request: Request, size: int | None = None) -> None:
        if size is None:
            size = request.content_length or 0
        with self._lock:
            self.requests.append((request.method, request.path, size))

    def _json(self, status: int, body) -> Response:
        return Response(json.dumps(body), status=status, mimetype="application/json")

    def _error(self, status: int, error: str, message: str) -> _Abort:
        http = status if self.real_status_codes else 400
        return _Abort(self._json(http, {"statusCode": str(status), "error": error,
                                        "message": message}))

    def _not_found(self) -> _Abort:
        return self._error(404, "not_found", "Object not found")

    def _auth(self, request: Request, tus: bool = False) -> None:
        apikey = request.headers.get("apikey")
        if apikey is None:  # the API gateway answers before storage sees the request
            raise _Abort(self._json(401, {"message": "No API key found in request"}))
        if apikey != self.service_key:
            raise _Abort(self._json(401, {"message": "Invalid API key"}))
        auth = request.headers.get("authorization")
        if auth is None:
            if tus:
                raise _Abort(Response("Missing authorization header", status=400))
            raise self._error(403, "Unauthorized",
                              "headers must have required property 'authorization'")
        if auth != f"Bearer {self.service_key}":
            if tus:
                raise _Abort(Response("invalid signature", status=403))
            raise self._error(403, "Unauthorized", "invalid signature")

    def _check(self, bucket: str, name: str | None = None) -> None:
        if bucket not in self.buckets:
            raise self._error(404, "Bucket not found", "Bucket not found")
        if name is not None and not VALID_KEY.fullmatch(name):
            raise self._error(400, "InvalidKey", f"Invalid key: {name}")

    def _take_failure(self, what: str):
        with self._lock:
            failure = self.failures.get(what)
            if failure is None:
                return None
            failure[2] -= 1
            if failure[2] <= 0:
                del self.failures[what]
            self.failed.append(what)
            return failure[0], failure[1]

    @staticmethod
    def _drop_connection(request: Request) -> None:
        sock = request.environ.get("werkzeug.socket")
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _sign_token(self, bucket: str, name: str, exp: int) -> str:
        claims = base64.urlsafe_b64encode(json.dumps(
            {"url": f"{bucket}/{name}", "exp": exp}).encode()).decode().rstrip("=")
        sig = hmac.new(self._secret, claims.encode(), hashlib.sha256).hexdigest()
        return f"{claims}.{sig}"

    # -- the object API ----------------------------------------------------------------------

    def _upload(self, request: Request, bucket: str, name: str) -> Response:
        self._record(request)
        self._auth(request)
        self._check(bucket, name)
        upsert = request.headers.get("x-upsert", "false").lower() == "true"
        exists = (bucket, name) in self.objects
        if request.method == "POST" and exists and not upsert:
            raise self._error(409, "Duplicate", "The resource already exists")
        if request.method == "PUT" and not exists:
            raise self._not_found()
        if request.mimetype == "multipart/form-data":
            part = request.files.get("file")
            if part is None:
                raise self._error(400, "InvalidRequest", "No file was uploaded")
            data, content_type = part.read(), part.content_type or "application/octet-stream"
        else:
            data, content_type = request.get_data(), request.content_type or "text/plain"
        if self.file_size_limit is not None and len(data) > self.file_size_limit:
            raise self._error(413, "Payload too large",
                              "The object exceeded the maximum allowed size")
        obj = StoredObject(data, content_type)
        with self._lock:
            self.objects[(bucket, name)] = obj
        return self._json(200, {"Id": obj.id, "Key": f"{bucket}/{name}"})

    def _serve(self, request: Request, obj: StoredObject) -> Response:
        failure = self._take_failure("download")
        if failure is None:
            return Response(obj.data, status=200, content_type=obj.content_type)
        how, keep = failure
        if how == "error":
            return Response("upstream error", status=502)
        keep = len(obj.data) // 2 if keep is None else keep

        def body():
            yield obj.data[:keep]
            self._drop_connection(request)

        resp = Response(body(), status=200, content_type=obj.content_type, direct_passthrough=True)
        resp.headers["Content-Length"] = str(len(obj.data))
        return resp

    def _download(self, request: Request, bucket: str, name: str) -> Response:
        self._record(request)
        self._auth(request)
        self._check(bucket)
        obj = self.objects.get((bucket, name))
        if obj is None:
            raise self._not_found()
        return self._serve(request, obj)

    def _list(self, request: Request, bucket: str) -> Response:
        self._record(request)
        self._auth(request)
        self._check(bucket)
        body = request.get_json(silent=True)
        if not isinstance(body, dict) or not isinstance(body.get("prefix"), str):
            raise self._error(400, "InvalidRequest", "body must have required property 'prefix'")
        prefix = body["prefix"]
        if prefix and not prefix.endswith("/"):
            prefix += "/"  # the prefix is always a folder
        limit, offset = int(body.get("limit", 100)), int(body.get("offset", 0))
        search = str(body.get("search") or "").lower()
        reverse = (body.get("sortBy") or {}).get("order", "asc") == "desc"
        files, folders = {}, set()
        with self._lock:
            items = [(n, o) for (b, n), o in self.objects.items() if b == bucket]
        for name, obj in items:
            if not name.startswith(prefix):
                continue
            rest = name[len(prefix):]
            head, slash, _ = rest.partition("/")
            if not head.lower().startswith(search):
                continue
            if slash:
                folders.add(head)
            else:
                files[head] = obj
        entries = [{"name": f, "id": None, "updated_at": None, "created_at": None,
                    "last_accessed_at": None, "metadata": None} for f in folders]
        entries += [obj.entry(n) for n, obj in files.items()]
        entries.sort(key=lambda e: e["name"], reverse=reverse)
        return self._json(200, entries[offset:offset + limit])

    def _remove(self, request: Request, bucket: str) -> Response:
        self._record(request)
        self._auth(request)
        self._check(bucket)
        body = request.get_json(silent=True)
        prefixes = body.get("prefixes") if isinstance(body, dict) else None
        if not isinstance(prefixes, list) or not 1 <= len(prefixes) <= 1000:
            raise self._error(400, "InvalidRequest",
                              "body/prefixes must NOT have fewer than 1 items or more than 1000")
        removed = []
        with self._lock:
            for name in prefixes:
                obj = self.objects.pop((bucket, name), None)
                if obj is not None:
                    removed.append({"bucket_id": bucket, **obj.entry(name)})
        return self._json(200, removed)

    def _sign(self, request: Request, bucket: str, name: str) -> Response:
        self._record(request)
        self._auth(request)
        self._check(bucket)
        body = request.get_json(silent=True) or {}
        try:
            expires_in = int(body["expiresIn"])
            if expires_in < 1:
                raise ValueError
        except (KeyError, TypeError, ValueError):
            raise self._error(400, "InvalidRequest",
                              "body/expiresIn must be >= 1") from None
        if (bucket, name) not in self.objects:
            raise self._not_found()
        token = self._sign_token(bucket, name, int(self.now()) + expires_in)
        return self._json(200, {"signedURL": f"/object/sign/{bucket}/{quote(name)}?token={token}"})

    def _signed_get(self, request: Request, bucket: str, name: str) -> Response:
        self._record(request)
        token = request.args.get("token")
        if not token:
            raise self._error(400, "InvalidJWT", "querystring must have required property 'token'")
        claims, _, sig = token.partition(".")
        good = hmac.new(self._secret, claims.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(sig, good):
            raise self._error(400, "InvalidSignature", "invalid signature")
        payload = json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))
        if payload["exp"] <= self.now():
            raise self._error(400, "InvalidJWT", '"exp" claim timestamp check failed')
        if payload["url"] != f"{bucket}/{name}":
            raise self._error(400, "InvalidSignature", "The url do not match the signature")
        obj = self.objects.get((bucket, name))
        if obj is None:
            raise self._not_found()
        return self._serve(request, obj)

    # -- TUS resumable uploads -----------------------------------------------------------------

    def _tus_common(self, request: Request) -> None:
        if request.headers.get("Tus-Resumable") != "1.0.0":
            raise _Abort(Response("Unsupported version", status=412,
                                  headers={"Tus-Version": "1.0.0"}))
        self._auth(request, tus=True)

    @staticmethod
    def _tus_headers(**extra) -> dict:
        return {"Tus-Resumable": "1.0.0", "Cache-Control": "no-store", **extra}

    def _tus_create(self, request: Request) -> Response:
        self._record(request)
        self._tus_common(request)
        try:
            length = int(request.headers["Upload-Length"])
            if length < 0:
                raise ValueError
        except (KeyError, ValueError):
            return Response("Upload-Length or Upload-Defer-Length header required", status=400)
        meta = {}
        for item in (request.headers.get("Upload-Metadata") or "").split(","):
            k, _, v = item.strip().partition(" ")
            if k:
                meta[k] = base64.b64decode(v).decode() if v else ""
        bucket, name = meta.get("bucketName"), meta.get("objectName")
        if not bucket or not name:
            return Response("metadata bucketName and objectName are required", status=400)
        if bucket not in self.buckets:
            return Response("Bucket not found", status=404)
        if not VALID_KEY.fullmatch(name):
            return Response(f"Invalid key: {name}", status=400)
        upsert = request.headers.get("x-upsert", "false").lower() == "true"
        if (bucket, name) in self.objects and not upsert:
            return Response("The resource already exists", status=409)
        if self.file_size_limit is not None and length > self.file_size_limit:
            return Response("Maximum size exceeded", status=413)
        upload_id = base64.urlsafe_b64encode(
            f"{bucket}/{name}/{uuid.uuid4()}".encode()).decode().rstrip("=")
        with self._lock:
            self.uploads[upload_id] = TusUpload(bucket, name, length,
                                                meta.get("contentType") or "application/octet-stream",
                                                upsert)
        location = f"{request.host_url}storage/v1/upload/resumable/{upload_id}"
        return Response(status=201, headers=self._tus_headers(Location=location))

    def _tus_head(self, request: Request, upload_id: str) -> Response:
        self._record(request)
        self._tus_common(request)
        up = self.uploads.get(upload_id)
        if up is None:
            return Response(status=404)
        return Response(status=200, headers=self._tus_headers(
            **{"Upload-Offset": str(len(up.data)), "Upload-Length": str(up.length)}))

    def _tus_patch(self, request: Request, upload_id: str) -> Response:
        size = request.content_length or 0
        self._record(request, size)
        with self._lock:
            self.patch_sizes.append(size)
        self._tus_common(request)
        up = self.uploads.get(upload_id)
        if up is None:
            return Response("Upload not found", status=404)
        if request.mimetype != "application/offset+octet-stream":
            return Response("Invalid Content-Type", status=415)
        try:
            offset = int(request.headers["Upload-Offset"])
        except (KeyError, ValueError):
            return Response("Upload-Offset header required", status=400)
        if offset != len(up.data):
            return Response(f"Upload-Offset {offset} does not match {len(up.data)}", status=409)
        if size > TUS_CHUNK_LIMIT:
            return Response(f"chunk of {size} bytes is over the {TUS_CHUNK_LIMIT} limit", status=413)
        if offset + size > up.length:
            return Response("Upload-Length exceeded", status=413)
        failure = self._take_failure("tus_patch")
        if failure is not None:
            how, keep = failure
            if how == "error":
                request.stream.read()
                return Response("bad gateway", status=502)
            keep = size // 2 if keep is None else keep
            part = request.stream.read(keep)
            with self._lock:
                up.data += part
            self._drop_connection(request)
            return Response(status=500)
        chunk = request.stream.read()
        if len(chunk) != size:
            return Response("incomplete chunk", status=400)
        with self._lock:
            up.data += chunk
            if len(up.data) == up.length:
                self.objects[(up.bucket, up.name)] = StoredObject(bytes(up.data), up.content_type)
        return Response(status=204, headers=self._tus_headers(**{"Upload-Offset": str(len(up.data))}))
