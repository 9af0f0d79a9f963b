"""Object storage: the interface both sides use, its backends, and the choice between them.

Keys are '/'-separated relative paths. Every write is atomic: a reader sees the whole
object or none of it. ``LocalStorage`` keeps objects as files under a directory;
``SupabaseStorage`` keeps them in a Supabase Storage bucket (its client is imported only
when one is made).
"""
from __future__ import annotations

import os

from shared.errors import StorageError
from shared.storage.base import Storage, check_key, join
from shared.storage.local import LocalStorage
from shared.storage.supabase import DEFAULT_CHUNK_SIZE, SupabaseStorage

__all__ = ["Storage", "LocalStorage", "SupabaseStorage", "check_key", "join",
           "storage_from_env", "StorageError", "DEFAULT_CHUNK_SIZE"]


def storage_from_env(env: dict | None = None) -> Storage:
    """The worker's storage, configured from its own environment (never from job input).

    >>> storage_from_env({"STORAGE_BACKEND": "local", "STORAGE_LOCAL_ROOT": "/srv/objects"})
    LocalStorage('/srv/objects')
    >>> storage_from_env({"STORAGE_BACKEND": "supabase", "SUPABASE_URL": "https://x.supabase.co"})
    Traceback (most recent call last):
    ...
    shared.errors.StorageError: STORAGE_BACKEND=supabase needs SUPABASE_SERVICE_KEY (or SUPABASE_SERVICE_ROLE_KEY) in the environment
    """
    env = os.environ if env is None else env
    backend = (env.get("STORAGE_BACKEND") or "local").strip().lower()
    if backend == "local":
        return LocalStorage(env.get("STORAGE_LOCAL_ROOT") or "storage")
    if backend == "supabase":
        url = (env.get("SUPABASE_URL") or "").strip()
        key = (env.get("SUPABASE_SERVICE_KEY") or env.get("SUPABASE_SERVICE_ROLE_KEY") or "").strip()
        missing = [name for name, value in (
            ("SUPABASE_URL", url),
            ("SUPABASE_SERVICE_KEY (or SUPABASE_SERVICE_ROLE_KEY)", key)) if not value]
        if missing:
            raise StorageError(f"STORAGE_BACKEND=supabase needs {' and '.join(missing)} "
                               "in the environment")
        chunk = (env.get("SUPABASE_CHUNK_SIZE") or "").strip()
        try:
            chunk_size = int(chunk) if chunk else DEFAULT_CHUNK_SIZE
            if chunk_size <= 0:
                raise ValueError
        except ValueError:
            raise StorageError(f"invalid SUPABASE_CHUNK_SIZE {chunk!r}: expected a positive "
                               f"number of bytes (Supabase wants {DEFAULT_CHUNK_SIZE})") from None
        return SupabaseStorage(url, key, (env.get("SUPABASE_BUCKET") or "training").strip(),
                               chunk_size=chunk_size)
    raise StorageError(f"unknown STORAGE_BACKEND {backend!r}: expected 'local' or 'supabase'")
