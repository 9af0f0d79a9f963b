"""The validation report's stored versions, read back: the list, a version's PDF, and the
newest version's page for share links. Building them is ``validation_reports`` (run by the
RQ task), so the web app never loads WeasyPrint or matplotlib."""
from __future__ import annotations

from sqlalchemy import func, select

from control.extensions import db
from control.models import TrainingJob, ValidationReport
from control.services.exceptions import Conflict, NotFound
from control.services.storage import get_storage
from shared.storage import join

PDF_URL = "__REPORT_PDF_URL__"      # where a share page puts its own link to the PDF


def versions(job: TrainingJob) -> list[ValidationReport]:
    """Every version of the job's report, newest first."""
    return list(db.session.scalars(select(ValidationReport).where(ValidationReport.training_job_id == job.id)
                                   .order_by(ValidationReport.version.desc())))


def newest(job: TrainingJob) -> ValidationReport | None:
    return db.session.scalars(select(ValidationReport).where(ValidationReport.training_job_id == job.id)
                              .order_by(ValidationReport.version.desc()).limit(1)).first()


def key_of(job: TrainingJob, version: int, mark: str) -> str:
    """Where a version's PDF is kept; the fingerprint in the name means no two builds ever
    write the same file."""
    return join(job.storage_prefix, "reports", f"validation-report-v{version}-{mark[:12]}.pdf")


def html_key(pdf_key: str) -> str:
    return pdf_key.removesuffix(".pdf") + ".html"


def _not_yet(job: TrainingJob) -> Conflict:
    return Conflict(f"job {job.id} has no validation report yet: it is built when the evaluation lands",
                    code="not_ready")


def pdf_of(job: TrainingJob, version: int | None = None) -> tuple[ValidationReport, bytes]:
    """A version of the report (the newest by default) and its bytes."""
    if version is None:
        row = newest(job)
    else:
        row = db.session.scalars(select(ValidationReport).where(
            ValidationReport.training_job_id == job.id, ValidationReport.version == version)).first()
    if row is None:
        if version is not None:
            count = db.session.scalar(select(func.count()).select_from(ValidationReport)
                                      .where(ValidationReport.training_job_id == job.id))
            raise NotFound(f"version of the report (it has {count}); version", str(version))
        raise _not_yet(job)
    return row, get_storage().get_bytes(row.storage_key)


def html_of(job: TrainingJob, pdf_url: str) -> str:
    """The newest version as a page (the share link's), the same facts as its PDF."""
    last = newest(job)
    storage = get_storage()
    if last is None or not storage.exists(html_key(last.storage_key)):
        raise _not_yet(job)
    return storage.get_bytes(html_key(last.storage_key)).decode().replace(PDF_URL, pdf_url)
