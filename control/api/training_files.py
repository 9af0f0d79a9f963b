"""``/api/training-files``: upload (multipart, field ``file``), list, show, delete.

A file's ``purpose`` (form field, as in OpenAI's files API) is ``fine-tune`` (the default:
a dataset to train on) or ``evaluation`` (the customer's own prompts, prompts JSONL); the
list filters on it (``?purpose=evaluation``).

An upload answers ``202`` with the file ``validating`` (its validation runs in a task);
``?wait=true`` waits up to ``UPLOAD_WAIT_SECONDS`` and answers as a synchronous upload did:
``201`` with the statistics, or ``422`` with every problem (and nothing kept), or still ``202``.
"""
from __future__ import annotations

import threading

from flask import current_app, g, jsonify, request, url_for
from sqlalchemy import select

from control.api.blueprint import bp
from control.api.documentation import MULTIPART, Media, Reply, api_doc
from control.api.errors import ApiError
from control.api.form_schemas import FileListQuery, UploadForm, UploadQuery
from control.api.requests import query_args
from control.extensions import db
from control.models import TrainingFileStatus, TrainingJob
from control.models.training_file import PURPOSES, FilePurpose
from control.responses import ErrorOut, TrainingFileList, TrainingFileOut
from control.services import training_files
from control.services.access import visible_file
from shared.dataset.prompts import PROMPTS_FORMAT

# The formats a file of each purpose may declare (else its format is detected).
FORMATS = {FilePurpose.FINE_TUNE: ("brightrun-lora-v4", "chat-jsonl"),
           FilePurpose.EVALUATION: (PROMPTS_FORMAT,)}
# Uploads waiting (``?wait=true``) at once, per process: each holds a server thread, so the
# rest answer 202 at once rather than let uploads take every thread.
WAITING_UPLOADS = threading.BoundedSemaphore(2)


@bp.post("/training-files")
@api_doc("Upload a dataset, or prompts to evaluate on with purpose=evaluation (multipart/form-data, "
         "field 'file'): 202 while it is validated off the request path; with ?wait=true, 201 once "
         "ready or 422 with every problem",
         body=Media({MULTIPART: UploadForm}), query=UploadQuery,
         responses={201: Reply(TrainingFileOut, headers={"Location": "the file"}),
                    202: Reply(TrainingFileOut, headers={"Location": "the file, to poll"}), 422: ErrorOut})
def upload_training_file():
    if not request.mimetype.startswith("multipart/form-data"):
        raise ApiError(415, "unsupported_media_type",
                       "upload the dataset as multipart/form-data with the file in field 'file'")
    upload = request.files.get("file")
    if upload is None:
        raise ApiError(400, "invalid_request", "missing the dataset: send it in form field 'file'", "file")
    purpose = request.form.get("purpose") or FilePurpose.FINE_TUNE
    if purpose not in PURPOSES:
        raise ApiError(400, "invalid_request", f"unknown purpose {purpose[:40]!r}: expected one of "
                       + ", ".join(PURPOSES), "purpose")
    fmt = request.form.get("format") or None
    if fmt is not None and fmt not in FORMATS[purpose]:
        raise ApiError(400, "invalid_request", f"unknown format {fmt[:40]!r} for {purpose!r} files: "
                       "expected one of " + ", ".join(FORMATS[purpose]), "format")
    wait = _flag("wait")
    row = training_files.create(g.user, upload.stream, upload.filename or "dataset", fmt, purpose)
    location = {"Location": url_for("api.get_training_file", file_id=row.id)}
    if wait and WAITING_UPLOADS.acquire(blocking=False):
        try:
            row = training_files.wait_for_validation(row, current_app.config["UPLOAD_WAIT_SECONDS"])
        finally:
            WAITING_UPLOADS.release()
        if row.status == TrainingFileStatus.READY:
            return jsonify(row.to_dict()), 201, location
        if row.status == TrainingFileStatus.INVALID:
            # As a synchronous upload answered: every problem, and nothing kept.
            error = training_files.problems_error(row)
            training_files.remove(row)
            raise error
    return jsonify(row.to_dict()), 202, location


def _flag(name: str) -> bool:
    value = request.args.get(name, "false").strip().lower()
    if value not in ("true", "false", "1", "0"):
        raise ApiError(400, "invalid_request", f"{name} must be true or false, got {value[:40]!r}", name)
    return value in ("true", "1")


@bp.get("/training-files")
@api_doc("Your training files, newest first; ?purpose= keeps those of one purpose",
         query=FileListQuery, responses={200: TrainingFileList})
def list_training_files():
    query = query_args(FileListQuery)
    return jsonify(data=[f.to_dict() for f in training_files.listed(g.user, query.purpose)])


@bp.get("/training-files/<file_id>")
@api_doc("A training file: its status, statistics, or every problem", responses={200: TrainingFileOut})
def get_training_file(file_id):
    return jsonify(visible_file(g.user, file_id).to_dict())


@bp.delete("/training-files/<file_id>")
@api_doc("Delete a training file no job uses", responses={204: None, 409: ErrorOut})
def delete_training_file(file_id):
    row = visible_file(g.user, file_id)
    used = db.session.scalar(select(db.func.count()).where(TrainingJob.training_file_id == row.id))
    if used:
        raise ApiError(409, "in_use", f"training file {file_id} is used by {used} job(s): delete them first")
    training_files.remove(row)
    return "", 204
