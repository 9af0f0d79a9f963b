"""The jobs list as CSV: the same filters and sort as the list (``training_jobs.matching`` and
``SORTS``), every matching job rather than a page, at most ``MAX_ROWS`` rows.

Every column is named in the first row. Money is in dollars with cents (``12.34``), durations
in minutes with one decimal, dates ISO 8601 in UTC (``2026-04-01T12:00:00Z``), tags joined by
``; ``. Text people typed (names, tags, emails, file names) that a spreadsheet would read as a
formula (a leading ``= + - @``, a tab or a carriage return) gets a leading ``'``.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from control.extensions import db
from control.models import TrainingFile, TrainingJob, User
from control.models.types import iso
from control.schemas import EXPORT_MAX_ROWS, JobListQuery
from control.services.formatting import spreadsheet_cell
from control.services.training_jobs import SORTS, matching

MAX_ROWS = EXPORT_MAX_ROWS
COLUMNS = ("id", "name", "status", "preset", "training_file_id", "dataset", "tags", "created_by",
           "created_at", "started_at", "completed_at", "duration_minutes", "estimated_cost_usd",
           "cost_usd", "perplexity_gain_pct", "delivery_status", "base_model", "method", "gpu_type",
           "gpu_pricing_tier")


@dataclass(frozen=True)
class Export:
    text: str
    rows: int           # job rows written (the header row not counted)
    total: int          # jobs matching the filters

    @property
    def truncated(self) -> bool:
        return self.rows < self.total


def dollars(value: float | None) -> str:
    """
    >>> dollars(12.345), dollars(0.004), dollars(0), dollars(None), dollars(1234.5)
    ('12.35', '0.00', '0.00', '', '1234.50')
    """
    return "" if value is None else f"{value:.2f}"


def number(value: float | None, places: int) -> str:
    """
    >>> number(135.04, 1), number(None, 1), number(32.456, 2)
    ('135.0', '', '32.46')
    """
    return "" if value is None else f"{value:.{places}f}"


def csv_row(job, email: str | None, filename: str | None) -> list[str]:
    """One job's row, in ``COLUMNS`` order."""
    text = spreadsheet_cell
    return [job.id, text(job.name), job.status, job.preset, job.training_file_id, text(filename),
            text("; ".join(job.tags or ())), text(email or job.created_by), iso(job.created_at),
            iso(job.started_at) or "", iso(job.completed_at) or "", number(job.actual_duration_minutes, 1),
            dollars(job.cost_estimate), dollars(job.actual_cost), number(job.perplexity_gain_pct, 2),
            job.delivery_status or "", job.base_model, job.method, job.gpu_type, job.gpu_pricing_tier]


_FIELDS = (TrainingJob.id, TrainingJob.name, TrainingJob.status, TrainingJob.preset, TrainingJob.training_file_id,
           TrainingJob.tags, TrainingJob.created_by, TrainingJob.created_at, TrainingJob.started_at,
           TrainingJob.completed_at, TrainingJob.actual_duration_minutes, TrainingJob.cost_estimate,
           TrainingJob.actual_cost, TrainingJob.perplexity_gain_pct, TrainingJob.delivery_status,
           TrainingJob.base_model, TrainingJob.method, TrainingJob.gpu_type, TrainingJob.gpu_pricing_tier)


def export(user: User, query: JobListQuery) -> Export:
    """The jobs ``user`` would see in the list for ``query``, all of them up to ``MAX_ROWS``,
    in the list's order (``page`` and ``per_page`` do not apply)."""
    stmt = matching(user, query)
    total = db.session.scalar(select(db.func.count()).select_from(stmt.subquery()))
    rows = db.session.execute(
        stmt.with_only_columns(*_FIELDS, User.email, TrainingFile.filename)
        .outerjoin(User, User.id == TrainingJob.created_by)
        .outerjoin(TrainingFile, TrainingFile.id == TrainingJob.training_file_id)
        .order_by(*SORTS[query.sort]).limit(MAX_ROWS)).all()
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(COLUMNS)
    for r in rows:
        writer.writerow(csv_row(r, r.email, r.filename))
    return Export(buf.getvalue(), len(rows), total)


def filename(now: datetime) -> str:
    """
    >>> from datetime import timezone
    >>> filename(datetime(2026, 4, 1, 12, 30, tzinfo=timezone.utc))
    'brightrun-jobs-20260401-1230.csv'
    """
    return f"brightrun-jobs-{now:%Y%m%d-%H%M}.csv"


def headers(result: Export, now: datetime) -> dict[str, str]:
    """The response's headers: the attachment's name, and whether the bound cut the list."""
    return {"Content-Disposition": f'attachment; filename="{filename(now)}"',
            "X-Total-Count": str(result.total), "X-Export-Rows": str(result.rows),
            "X-Export-Limit": str(MAX_ROWS), "X-Export-Truncated": "true" if result.truncated else "false"}
