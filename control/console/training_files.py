"""Training files: upload (stored at once, validated by a task), list, and a file's page:
its progress while it validates, then its statistics and preview, or every problem with
its place. Nothing here parses a dataset: the pages show what the validation stored.

A file is uploaded for a purpose: ``fine-tune`` (a dataset to train on) or ``evaluation``
(the customer's own prompts, previewed prompt by prompt; never trained on)."""
from __future__ import annotations

from flask import flash, g, jsonify, redirect, render_template, request, url_for
from sqlalchemy import select

from control.console.blueprint import bp
from control.extensions import db
from control.models import TrainingFileStatus, TrainingJob
from control.models.training_file import PURPOSES, FilePurpose
from control.services import training_files
from control.services.access import visible_file, visible_files
from shared.errors import DatasetError

SHOWN_PROBLEMS = 200
FILE_TONE = {TrainingFileStatus.VALIDATING: "info", TrainingFileStatus.READY: "ok",
             TrainingFileStatus.INVALID: "bad"}
PURPOSE_LABELS = {FilePurpose.FINE_TUNE: "Fine-tune: a dataset to train on",
                  FilePurpose.EVALUATION: "Evaluation: your own prompts to evaluate on"}


def _list_page(status: int = 200, **extra):
    extra.setdefault("purpose", FilePurpose.FINE_TUNE)
    return render_template("console/files/list.html", files=visible_files(g.user), tones=FILE_TONE,
                           purposes=PURPOSE_LABELS, **extra), status


@bp.get("/files")
def training_files_list():
    return _list_page()


@bp.post("/files")
def upload_training_file():
    purpose = request.form.get("purpose") or FilePurpose.FINE_TUNE
    if purpose not in PURPOSES:
        return _list_page(400, upload_error=f"Unknown purpose {purpose[:40]!r}: choose "
                          + " or ".join(PURPOSES) + ".")
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return _list_page(400, purpose=purpose, upload_error=(
            "Choose a prompts file (.jsonl) to upload." if purpose == FilePurpose.EVALUATION
            else "Choose a dataset file (.json or .jsonl) to upload."))
    try:
        row = training_files.create(g.user, upload.stream, upload.filename, purpose=purpose)
    except DatasetError as exc:          # over the size limit: nothing was stored
        return _list_page(422, purpose=purpose, rejected=upload.filename,
                          problems=exc.problems[:SHOWN_PROBLEMS], total_problems=exc.total)
    flash(f"{row.filename} is stored and being validated; this page shows the result.", "ok")
    return redirect(url_for("console.training_file_detail", file_id=row.id))


@bp.get("/files/<file_id>")
def training_file_detail(file_id):
    row = visible_file(g.user, file_id)
    jobs = db.session.scalars(select(TrainingJob).where(TrainingJob.training_file_id == row.id)
                              .order_by(TrainingJob.created_at.desc()).limit(50)).all()
    prompts = row.purpose == FilePurpose.EVALUATION
    return render_template("console/files/detail.html", file=row, stats=row.statistics,
                           sequences=None if prompts else row.preview,
                           prompts=row.preview if prompts else None,
                           problems=(row.problems or [])[:SHOWN_PROBLEMS],
                           total_problems=row.problem_count or len(row.problems or []),
                           tone=FILE_TONE.get(row.status, "info"), jobs=jobs)


@bp.get("/files/<file_id>/status.json")
def training_file_status(file_id):
    """What the file page polls while the file validates."""
    row = visible_file(g.user, file_id)
    return jsonify(id=row.id, status=row.status, final=row.status != TrainingFileStatus.VALIDATING)


@bp.post("/files/<file_id>/delete")
def delete_training_file(file_id):
    row = visible_file(g.user, file_id)
    used = db.session.scalar(select(db.func.count()).where(TrainingJob.training_file_id == row.id))
    if used:
        flash(f"{row.filename} is used by {used} job(s): delete them first.", "error")
        return redirect(url_for("console.training_file_detail", file_id=row.id))
    training_files.remove(row)
    flash(f"{row.filename} is deleted.", "ok")
    return redirect(url_for("console.training_files_list"))
