"""Uploaded datasets: validated before they are stored, with their statistics."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from control.extensions import db
from control.models.types import JSONType, UTCDateTime, iso, new_id, utcnow


class TrainingFile(db.Model):
    __tablename__ = "training_files"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id("file"))
    filename: Mapped[str] = mapped_column(String(255))
    format: Mapped[str] = mapped_column(String(32))
    storage_key: Mapped[str] = mapped_column(String(512))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    statistics: Mapped[dict] = mapped_column(JSONType)
    created_by: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def to_dict(self) -> dict:
        return {"id": self.id, "filename": self.filename, "format": self.format,
                "sha256": self.sha256, "size_bytes": self.size_bytes,
                "statistics": self.statistics, "created_by": self.created_by,
                "created_at": iso(self.created_at)}
