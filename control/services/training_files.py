"""Training files: stored as uploaded, then validated and analysed once, off the request path.

An upload is streamed to object storage (with its sha256 and the size limit) and recorded as
``validating``; the ``validate_training_file`` task parses it once and stores the outcome:
``ready`` with its statistics and a preview, or ``invalid`` with every problem and its place.
Pages and API reads use what was stored and never parse the file again. Only a ``ready``
file can be used for a job (``ready_file``), and only one whose ``purpose`` is ``fine-tune``:
an ``evaluation`` file holds the customer's own prompts (``shared/dataset/prompts.py``),
validated by the prompts parser and previewed prompt by prompt.
"""
from __future__ import annotations

import hashlib
import logging
import re
import tempfile
import threading
import time
from contextlib import contextmanager
from typing import IO

from flask import current_app
from redis.exceptions import RedisError
from sqlalchemy import select, update
from sqlalchemy.exc import InvalidRequestError

from control.extensions import db
from control.models import TrainingFile, TrainingFileStatus, User, utcnow
from control.models.training_file import FilePurpose
from control.models.types import new_id
from control.services import queue
from control.services.access import visible_file
from control.services.exceptions import JobStateError
from control.services.storage import get_storage
from shared.dataset import describe, parse_bytes, to_sequences
from shared.dataset.chat_jsonl import FORMAT as CHAT_JSONL
from shared.dataset.loading import detect_format
from shared.dataset.prompts import PROMPTS_FORMAT, PromptCase, describe_prompts, parse_prompts
from shared.errors import DatasetError, Problem
from shared.storage.layout import dataset_key

log = logging.getLogger(__name__)

COPY_CHUNK = 1024 * 1024
SNIFF_BYTES = 64 * 1024                 # enough of the head to tell JSON from JSON Lines
PREVIEW_CONVERSATIONS = 3
PREVIEW_PROMPTS = 5
PREVIEW_MAX_CHARS = 4000                # a message longer than this is cut in the preview
VALIDATION_TIMEOUT_S = 30 * 60          # the RQ task's limit: a 100 MB file parses in well under it
LOCK_TTL_S = 60                         # one validation of a file at a time; lapses if its worker dies
MAX_VALIDATION_TRIES = 3                # then the file is invalid, saying it could not be validated


def _a(word: str) -> str:
    """
    >>> _a("evaluation"), _a("fine-tune")
    ('an evaluation', 'a fine-tune')
    """
    return f"an {word}" if word[:1] in "aeiou" else f"a {word}"


class FileNotReady(JobStateError):
    """A job or an estimate on a file that is still validating, or invalid (HTTP 409)."""

    def __init__(self, row: TrainingFile):
        if row.status == TrainingFileStatus.VALIDATING:
            expected = ("wait until its validation finishes (GET /api/training-files/"
                        f"{row.id} shows it), then try again")
        else:
            count = row.problem_count or len(row.problems or [])
            expected = (f"it has {count} problem{'s' if count != 1 else ''}: fix them in the "
                        "file and upload it again")
        message = f"training file {row.id} is {row.status}: only a ready file can be used for a job; {expected}"
        Exception.__init__(self, message)
        self.message, self.code, self.file = message, "training_file_not_ready", row


class WrongFilePurpose(FileNotReady):
    """A file of another purpose than the use needs, such as a job on an evaluation file
    (HTTP 409). A ``FileNotReady``: what refuses an unready file (the new-job form) says this."""

    USES = {FilePurpose.FINE_TUNE: "trained on", FilePurpose.EVALUATION: "evaluated on"}

    def __init__(self, row: TrainingFile, purpose: str):
        message = (f"training file {row.id} is {_a(row.purpose)} file: only {_a(purpose)} file can be "
                   f"{self.USES.get(purpose, 'used here')}; upload one with purpose '{purpose}' (the "
                   "upload's purpose field) and use its id")
        Exception.__init__(self, message)
        self.message, self.code, self.file = message, "training_file_wrong_purpose", row


def safe_filename(name: str) -> str:
    """
    >>> safe_filename("../My data (v2).json")
    'My_data_v2_.json'
    """
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", base).strip("._") or "dataset"
    return cleaned[:120]


def too_large(limit: int) -> DatasetError:
    return DatasetError([Problem("file", f"the file is larger than the {limit:,}-byte limit "
                                 f"({limit / 1e6:.0f} MB; a real dataset is about 10 MB): "
                                 "is this the right file?")])


def create(user: User, stream: IO[bytes], filename: str, fmt: str | None = None,
           purpose: str = FilePurpose.FINE_TUNE) -> TrainingFile:
    """Stream an upload to storage (never whole in memory), record it ``validating`` and queue
    its validation. Raises ``DatasetError`` only for a file over ``DATASET_MAX_BYTES``."""
    limit = current_app.config["DATASET_MAX_BYTES"]
    row = TrainingFile(id=new_id("file"), filename=safe_filename(filename), format=fmt,
                       purpose=purpose, created_by=user.id, status=TrainingFileStatus.VALIDATING)
    with tempfile.NamedTemporaryFile(prefix="upload-", suffix=".part") as tmp:
        digest, size, head = hashlib.sha256(), 0, b""
        while chunk := stream.read(COPY_CHUNK):
            size += len(chunk)
            if size > limit:
                raise too_large(limit)
            digest.update(chunk)
            tmp.write(chunk)
            if len(head) < SNIFF_BYTES:
                head += chunk[:SNIFF_BYTES - len(head)]
        tmp.flush()
        row.sha256, row.size_bytes = digest.hexdigest(), size
        # The key's extension is a guess from the name and the head; the file's format is
        # settled by its validation (and sent to the worker with the job).
        if purpose == FilePurpose.EVALUATION:
            key_format = CHAT_JSONL         # JSON Lines too: kept as dataset.jsonl
        else:
            key_format = fmt or detect_format(row.filename, head.decode("utf-8-sig", errors="ignore"))
        row.storage_key = dataset_key(row.id, key_format)
        get_storage().put_file(row.storage_key, tmp.name)
    db.session.add(row)
    try:
        db.session.commit()
    except Exception:
        db.session.rollback()
        get_storage().delete(row.storage_key)
        raise
    enqueue_validation(row.id)
    return row


def enqueue_validation(file_id: str) -> None:
    """Queue the file's validation. With Redis away the file stays ``validating`` and the
    sweep queues it again once Redis answers."""
    try:
        queue.enqueue(queue.VALIDATE_TRAINING_FILE, file_id, job_timeout=VALIDATION_TIMEOUT_S)
    except RedisError:
        log.warning("could not queue the validation of %s; the sweep will", file_id, exc_info=True)


def preview_of(dataset) -> list[dict]:
    """The first conversations as they are trained (folded), as stored with the file."""
    out = []
    for seq in to_sequences(dataset.conversations[:PREVIEW_CONVERSATIONS], fold=True):
        messages = [{"role": m.role, "content": m.content[:PREVIEW_MAX_CHARS],
                     "cut": len(m.content) > PREVIEW_MAX_CHARS} for m in seq.messages]
        out.append({"conversation_id": seq.conversation_id, "messages": messages,
                    "trained": list(seq.trained)})
    return out


def prompts_preview(cases: list[PromptCase]) -> list[dict]:
    """The first prompts of a prompts file, as stored with it (long texts cut)."""
    def cut(text: str | None) -> dict | None:
        return None if text is None else {"content": text[:PREVIEW_MAX_CHARS],
                                          "cut": len(text) > PREVIEW_MAX_CHARS}
    return [{"id": c.id, "category": c.category, "line": c.line,
             "messages": [{"role": m["role"], **cut(m["content"])} for m in c.messages],
             "reference": cut(c.reference)} for c in cases[:PREVIEW_PROMPTS]]


def analyse(row: TrainingFile, data: bytes) -> dict:
    """What validation stores on the row: ready with statistics and a preview, or invalid
    with every problem (the same placed problems a 422 lists). A prompts file is read by the
    prompts parser, a dataset by the dataset parser."""
    try:
        if row.purpose == FilePurpose.EVALUATION:
            cases = parse_prompts(data, name=row.filename,
                                  max_bytes=current_app.config["DATASET_MAX_BYTES"])
            return {"status": TrainingFileStatus.READY, "format": PROMPTS_FORMAT,
                    "statistics": describe_prompts(cases), "preview": prompts_preview(cases),
                    "problems": None, "problem_count": None}
        dataset = parse_bytes(data, name=row.filename, fmt=row.format,
                              max_bytes=current_app.config["DATASET_MAX_BYTES"])
        return {"status": TrainingFileStatus.READY, "format": dataset.format,
                "statistics": describe(dataset), "preview": preview_of(dataset),
                "problems": None, "problem_count": None}
    except DatasetError as exc:
        problems, total = exc.problems, exc.total
    except Exception as exc:  # noqa: BLE001 - a file that breaks the parser must not be retried forever
        log.exception("validating training file %s failed", row.id)
        problems, total = [Problem("file", f"could not be validated ({type(exc).__name__}); this "
                                   "has been logged: tell the platform team")], 1
    return _invalid(problems, total)


def _invalid(problems: list[Problem], total: int) -> dict:
    return {"status": TrainingFileStatus.INVALID, "statistics": None, "preview": None,
            "problems": [p.to_dict() for p in problems], "problem_count": total}


def _tries(file_id: str) -> int:
    """This validation's try number (a task the sweep queued again after a lost or failed one
    counts too), kept in Redis for a day."""
    conn = queue.redis_connection()
    key = f"{current_app.config['QUEUE_NAME']}:validation-tries:{file_id}"
    with conn.pipeline() as pipe:
        pipe.incr(key)
        pipe.expire(key, 24 * 3600)
        return int(pipe.execute()[0])


def validate(file_id: str) -> str | None:
    """Validate and analyse a ``validating`` file once; returns its status (None: deleted).

    Safe to run twice (a re-queued task beside a slow one): a lock in Redis lets one run at
    a time, and the outcome is written only while the row is still ``validating``."""
    row = db.session.get(TrainingFile, file_id)
    if row is None or row.status != TrainingFileStatus.VALIDATING:
        return row.status if row is not None else None
    with _held(f"{current_app.config['QUEUE_NAME']}:validating:{file_id}") as mine:
        if not mine:
            return TrainingFileStatus.VALIDATING        # another worker has it in hand
        if _tries(file_id) > MAX_VALIDATION_TRIES:      # killed or failing every time: stop
            outcome = _invalid([Problem("file", f"could not be validated in {MAX_VALIDATION_TRIES} tries "
                                        "(the file could not be read, or its validation was stopped each "
                                        "time); this has been logged: upload it again or tell the platform "
                                        "team")], 1)
            log.error("training file %s: validation gave up after %d tries", file_id, MAX_VALIDATION_TRIES)
        else:
            outcome = analyse(row, get_storage().get_bytes(row.storage_key))
        db.session.execute(update(TrainingFile)
                           .where(TrainingFile.id == file_id,
                                  TrainingFile.status == TrainingFileStatus.VALIDATING)
                           .values(**outcome, validated_at=utcnow()))
        db.session.commit()
    return outcome["status"]


@contextmanager
def _held(key: str):
    """A Redis lock while it is held: renewed every few seconds, so a killed worker's lock
    lapses within ``LOCK_TTL_S`` and the sweep's next task takes the file over."""
    conn = queue.redis_connection()
    if not conn.set(key, "1", nx=True, ex=LOCK_TTL_S):
        yield False
        return
    stop = threading.Event()

    def renew():
        while not stop.wait(LOCK_TTL_S / 4):
            conn.expire(key, LOCK_TTL_S)
    beat = threading.Thread(target=renew, name=f"lock {key}", daemon=True)
    beat.start()
    try:
        yield True
    finally:
        stop.set()
        beat.join()
        conn.delete(key)


def stale_validations(older_than) -> list[str]:
    """Files still ``validating`` that were uploaded before ``older_than``: their task may be lost."""
    return list(db.session.scalars(select(TrainingFile.id).where(
        TrainingFile.status == TrainingFileStatus.VALIDATING, TrainingFile.created_at < older_than)))


def wait_for_validation(row: TrainingFile, seconds: float) -> TrainingFile:
    """Poll the row until its validation ends or ``seconds`` pass; returns it refreshed."""
    deadline = time.monotonic() + max(0.0, seconds)
    pause = 0.05
    while True:
        with db.engine.connect() as conn:       # a fresh read: sees the worker's commit
            status = conn.scalar(select(TrainingFile.status).where(TrainingFile.id == row.id))
        if status != TrainingFileStatus.VALIDATING or time.monotonic() >= deadline:
            break
        time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
        pause = min(pause * 1.5, 0.5)
    if status is not None:
        try:
            db.session.refresh(row)
        except InvalidRequestError:     # deleted meanwhile: answer with what the upload knew
            pass
    return row


def problems_error(row: TrainingFile) -> DatasetError:
    """An invalid file's stored problems as the error a synchronous upload raised."""
    problems = [Problem(p["where"], p["message"], p.get("field")) for p in row.problems or []]
    return DatasetError(problems, source=row.filename, total=row.problem_count or len(problems))


def remove(row: TrainingFile) -> None:
    """Delete the file and its stored bytes, whatever its status."""
    get_storage().delete(row.storage_key)
    db.session.delete(row)
    db.session.commit()


def ready_file(user: User, file_id: str, purpose: str = FilePurpose.FINE_TUNE) -> TrainingFile:
    """The file, if ``user`` may see it (else 404), it is of ``purpose`` (else
    ``WrongFilePurpose``, 409: a job trains only on a fine-tune file) and it is ``ready``
    (else ``FileNotReady``, 409)."""
    row = visible_file(user, file_id)
    if row.purpose != purpose:
        raise WrongFilePurpose(row, purpose)
    if row.status != TrainingFileStatus.READY:
        raise FileNotReady(row)
    return row


def listed(user: User, purpose: str | None = None, limit: int = 500) -> list[TrainingFile]:
    """The files ``user`` may see (``visible_files``), newest first; only those of
    ``purpose`` when given."""
    stmt = select(TrainingFile).order_by(TrainingFile.created_at.desc())
    if not user.is_admin:
        stmt = stmt.where(TrainingFile.created_by == user.id)
    if purpose is not None:
        stmt = stmt.where(TrainingFile.purpose == purpose)
    return list(db.session.scalars(stmt.limit(limit)))
