"""``/api/training-files``: upload (multipart, field ``file``), list, show, delete."""
from __future__ import annotations

from flask import g, jsonify, request
from sqlalchemy import select

from control.api.blueprint import bp
from control.api.errors import ApiError
from control.extensions import db
from control.models import TrainingJob
from control.services import training_files
from control.services.access import visible_file, visible_files
from control.services.storage import get_storage

FORMATS = ("brightrun-lora-v4", "chat-jsonl")


@bp.post("/training-files")
def upload_training_file():
    if not request.mimetype.startswith("multipart/form-data"):
        raise ApiError(415, "unsupported_media_type",
                       "upload the dataset as multipart/form-data with the file in field 'file'")
    upload = request.files.get("file")
    if upload is None:
        raise ApiError(400, "invalid_request", "missing the dataset: send it in form field 'file'", "file")
    fmt = request.form.get("format") or None
    if fmt is not None and fmt not in FORMATS:
        raise ApiError(400, "invalid_request", f"unknown format {fmt!r}: expected one of "
                       + ", ".join(FORMATS), "format")
    data = upload.read()
    row = training_files.create(g.user, data, upload.filename or "dataset", fmt)
    return jsonify(row.to_dict()), 201


@bp.get("/training-files")
def list_training_files():
    return jsonify(data=[f.to_dict() for f in visible_files(g.user)])


@bp.get("/training-files/<file_id>")
def get_training_file(file_id):
    return jsonify(visible_file(g.user, file_id).to_dict())


@bp.delete("/training-files/<file_id>")
def delete_training_file(file_id):
    row = visible_file(g.user, file_id)
    used = db.session.scalar(select(db.func.count()).where(TrainingJob.training_file_id == row.id))
    if used:
        raise ApiError(409, "in_use", f"training file {file_id} is used by {used} job(s): delete them first")
    get_storage().delete(row.storage_key)
    db.session.delete(row)
    db.session.commit()
    return "", 204
