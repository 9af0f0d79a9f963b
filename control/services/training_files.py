"""Training files: validated with the dataset code before anything is stored."""
from __future__ import annotations

import hashlib
import re

from flask import current_app

from control.extensions import db
from control.models import TrainingFile, TrainingFileStatus, User, utcnow
from control.models.types import new_id
from control.services.storage import get_storage
from shared.dataset import describe, parse_bytes
from shared.storage.layout import dataset_key


def safe_filename(name: str) -> str:
    """
    >>> safe_filename("../My data (v2).json")
    'My_data_v2_.json'
    """
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", base).strip("._") or "dataset"
    return cleaned[:120]


def create(user: User, data: bytes, filename: str, fmt: str | None = None) -> TrainingFile:
    """Validate, store (with its sha256) and record a dataset. Raises ``DatasetError``."""
    dataset = parse_bytes(data, name=filename, fmt=fmt, max_bytes=current_app.config["DATASET_MAX_BYTES"])
    stats = describe(dataset)
    row = TrainingFile(id=new_id("file"), filename=safe_filename(filename), format=dataset.format,
                       sha256=hashlib.sha256(data).hexdigest(), size_bytes=len(data),
                       statistics=stats, created_by=user.id, storage_key="",
                       status=TrainingFileStatus.READY, validated_at=utcnow())
    row.storage_key = dataset_key(row.id, dataset.format)
    get_storage().put_bytes(row.storage_key, data)
    db.session.add(row)
    try:
        db.session.commit()
    except Exception:
        db.session.rollback()
        get_storage().delete(row.storage_key)
        raise
    return row
