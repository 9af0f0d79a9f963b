"""Training files: upload (every problem shown with its place), list, statistics, preview."""
from __future__ import annotations

from flask import current_app, flash, g, redirect, render_template, request, url_for
from sqlalchemy import select

from control.console.blueprint import bp
from control.extensions import db
from control.models import TrainingFile, TrainingJob
from control.services import training_files
from control.services.access import visible_file, visible_files
from control.services.storage import get_storage
from shared.dataset import parse_bytes, to_sequences
from shared.errors import DatasetError

PREVIEW_CONVERSATIONS = 3
PREVIEW_MAX_BYTES = 10 * 1024 * 1024
SHOWN_PROBLEMS = 200


@bp.get("/files")
def training_files_list():
    return render_template("console/files/list.html", files=visible_files(g.user))


@bp.post("/files")
def upload_training_file():
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return render_template("console/files/list.html", files=visible_files(g.user),
                               upload_error="Choose a dataset file (.json or .jsonl) to upload."), 400
    try:
        row = training_files.create(g.user, upload.read(), upload.filename)
    except DatasetError as exc:
        return render_template("console/files/list.html", files=visible_files(g.user),
                               rejected=upload.filename, problems=exc.problems[:SHOWN_PROBLEMS],
                               total_problems=exc.total), 422
    flash(f"{row.filename} is valid and stored: {row.statistics['conversations']} conversations, "
          f"{row.statistics['trainable_pairs']} training pairs.", "ok")
    return redirect(url_for("console.training_file_detail", file_id=row.id))


def preview(row: TrainingFile) -> list | None:
    """The first conversations as they are trained (folded), or None for a very large file."""
    if row.size_bytes > PREVIEW_MAX_BYTES:
        return None
    dataset = parse_bytes(get_storage().get_bytes(row.storage_key), name=row.filename, fmt=row.format,
                          max_bytes=current_app.config["DATASET_MAX_BYTES"])
    return to_sequences(dataset.conversations[:PREVIEW_CONVERSATIONS], fold=True)


@bp.get("/files/<file_id>")
def training_file_detail(file_id):
    row = visible_file(g.user, file_id)
    jobs = db.session.scalars(select(TrainingJob).where(TrainingJob.training_file_id == row.id)
                              .order_by(TrainingJob.created_at.desc()).limit(50)).all()
    return render_template("console/files/detail.html", file=row, stats=row.statistics,
                           sequences=preview(row), jobs=jobs)
