"""The validation report's versions: built by an RQ task when the evaluation lands and
again when reviews or the decision change what it says; every version is kept.

A build gathers the report's facts (``report_context``), and renders a PDF only when they
differ from the newest version's (its fingerprint leaves out the version and the time), so
a burst of triggers makes one new version, not many.
"""
from __future__ import annotations

import hashlib
import json
import time

from sqlalchemy import func, select

from control.extensions import db
from control.models import JobStatus, ModelArtifact, TrainingJob, ValidationReport
from control.services import report_context
from control.services.exceptions import Conflict, NotFound
from control.services.report import ReportContext, render_html, render_pdf
from control.services.storage import get_storage
from shared.storage import join

PDF_URL = "__REPORT_PDF_URL__"      # where a share page puts its own link to the PDF
TRIGGERS = ("evaluation", "judge", "reviews", "decision", "request")


def versions(job: TrainingJob) -> list[ValidationReport]:
    """Every version of the job's report, newest first."""
    return list(db.session.scalars(select(ValidationReport).where(ValidationReport.training_job_id == job.id)
                                   .order_by(ValidationReport.version.desc())))


def fingerprint(ctx: ReportContext) -> str:
    """What the report says, less its version and time."""
    body = ctx.model_dump(mode="json", exclude={"version", "generated_at"})
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def key_of(job: TrainingJob, version: int, mark: str) -> str:
    """Where a version's PDF is kept; the fingerprint in the name means no two builds ever
    write the same file."""
    return join(job.storage_prefix, "reports", f"validation-report-v{version}-{mark[:12]}.pdf")


def build(job: TrainingJob, trigger: str) -> ValidationReport | None:
    """A new version when what the report says has changed; None when it has not (or the
    job has nothing to report yet). Commits."""
    if job.status != JobStatus.COMPLETED:
        return None
    # One build at a time per job (the job's row is locked until the commit; SQLite writes
    # one at a time anyway): two workers never number the same version.
    db.session.execute(select(TrainingJob.id).where(TrainingJob.id == job.id).with_for_update())
    newest = versions(job)[:1]
    number = (newest[0].version if newest else 0) + 1
    ctx = report_context.gather(job, number)
    mark = fingerprint(ctx)
    if newest and newest[0].fingerprint == mark:
        return None
    started = time.perf_counter()
    pdf = render_pdf(ctx)
    seconds = time.perf_counter() - started
    key = key_of(job, number, mark)
    storage = get_storage()
    storage.put_bytes(html_key(key), render_html(ctx, pdf_url=PDF_URL).encode())   # the share page's
    storage.put_bytes(key, pdf)
    row = ValidationReport(training_job_id=job.id, version=number, storage_key=key, size_bytes=len(pdf),
                           fingerprint=mark, trigger=trigger, build_seconds=seconds)
    db.session.add(row)
    art = db.session.scalars(select(ModelArtifact).where(ModelArtifact.training_job_id == job.id)).first()
    if art is not None:
        art.validation_report_path = key
    db.session.commit()
    return row


def pdf_of(job: TrainingJob, version: int | None = None) -> tuple[ValidationReport, bytes]:
    """A version of the report (the newest by default) and its bytes."""
    stmt = select(ValidationReport).where(ValidationReport.training_job_id == job.id)
    if version is None:
        stmt = stmt.order_by(ValidationReport.version.desc())
    else:
        stmt = stmt.where(ValidationReport.version == version)
    row = db.session.scalars(stmt.limit(1)).first()
    if row is None:
        if version is not None:
            count = db.session.scalar(select(func.count()).select_from(ValidationReport)
                                      .where(ValidationReport.training_job_id == job.id))
            raise NotFound(f"version of the report (it has {count}); version", str(version))
        raise Conflict(f"job {job.id} has no validation report yet: it is built when the evaluation lands",
                       code="not_ready")
    return row, get_storage().get_bytes(row.storage_key)


def html_key(pdf_key: str) -> str:
    return pdf_key.removesuffix(".pdf") + ".html"


def html_of(job: TrainingJob, pdf_url: str) -> str:
    """The newest version as a page (the share link's): the same facts as its PDF; before
    the first version is built, the facts as they are now."""
    newest = versions(job)[:1]
    storage = get_storage()
    if newest and storage.exists(html_key(newest[0].storage_key)):
        return storage.get_bytes(html_key(newest[0].storage_key)).decode().replace(PDF_URL, pdf_url)
    return render_html(report_context.gather(job, 1), pdf_url=pdf_url)
