"""Uploaded datasets. The bytes are stored first; a task then validates and analyses the file
once (``validating`` → ``ready`` or ``invalid``), and pages and API reads use what it stored:
the statistics, a preview, or every problem with its place.

A file's ``purpose`` (as in OpenAI's files API) says what it is for: ``fine-tune``, a
dataset to train on, or ``evaluation``, the customer's own prompts to evaluate a job on
(``shared/dataset/prompts.py``). Only a fine-tune file can be trained on."""
from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from control.extensions import db
from control.models.types import JSONType, UTCDateTime, iso, new_id, utcnow


class TrainingFileStatus(StrEnum):
    VALIDATING = "validating"   # stored; its validation task has not finished
    READY = "ready"             # valid: statistics and preview stored, jobs may use it
    INVALID = "invalid"         # every problem stored, with its place


class FilePurpose(StrEnum):
    FINE_TUNE = "fine-tune"     # a dataset to train on (brightrun-lora-v4 or chat JSONL)
    EVALUATION = "evaluation"   # prompts to evaluate on (prompts JSONL), never trained on


PURPOSES = tuple(p.value for p in FilePurpose)


class TrainingFile(db.Model):
    __tablename__ = "training_files"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id("file"))
    filename: Mapped[str] = mapped_column(String(255))
    purpose: Mapped[str] = mapped_column(String(16), default=FilePurpose.FINE_TUNE,
                                         server_default=FilePurpose.FINE_TUNE.value)
    format: Mapped[str | None] = mapped_column(String(32))     # known once validated
    storage_key: Mapped[str] = mapped_column(String(512))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), default=TrainingFileStatus.VALIDATING)
    statistics: Mapped[dict | None] = mapped_column(JSONType)
    problems: Mapped[list | None] = mapped_column(JSONType)     # when invalid: every problem, placed
    problem_count: Mapped[int | None] = mapped_column(Integer)  # when invalid: all of them (problems lists 200)
    preview: Mapped[list | None] = mapped_column(JSONType)      # the first conversations as trained, or prompts
    validated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def to_dict(self) -> dict:
        return {"id": self.id, "filename": self.filename, "purpose": self.purpose,
                "format": self.format, "sha256": self.sha256, "size_bytes": self.size_bytes,
                "status": self.status, "statistics": self.statistics, "problems": self.problems,
                "validated_at": iso(self.validated_at), "created_by": self.created_by,
                "created_at": iso(self.created_at)}
