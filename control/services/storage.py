"""The control plane's object storage, from the same variables the workers read."""
from __future__ import annotations

from flask import current_app

from shared.storage import Storage, storage_from_env


def get_storage() -> Storage:
    app = current_app._get_current_object()
    store = app.extensions.get("brightrun.storage")
    if store is None:
        store = app.extensions["brightrun.storage"] = storage_from_env(app.config["STORAGE_ENV"])
    return store
