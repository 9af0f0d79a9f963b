"""The validation report's versions, built by an RQ task when the evaluation lands and
again when reviews or the decision change what it says; every version is kept (read back
through ``report_versions``).

A build gathers the report's facts (``report_context``), and renders a PDF only when they
differ from the newest version's (its fingerprint leaves out the version and the time), so
a burst of triggers makes one new version, not many.
"""
from __future__ import annotations

import hashlib
import json
import time

from sqlalchemy import select

from control.extensions import db
from control.models import JobStatus, ModelArtifact, TrainingJob, ValidationReport
from control.services import report_context
from control.services.report import ReportContext, render_page_and_pdf
from control.services.report_versions import PDF_URL, html_key, key_of, newest
from control.services.storage import get_storage

TRIGGERS = ("evaluation", "judge", "reviews", "decision", "request")


def fingerprint(ctx: ReportContext) -> str:
    """What the report says, less its version and time."""
    body = ctx.model_dump(mode="json", exclude={"version", "generated_at"})
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def build(job: TrainingJob, trigger: str) -> ValidationReport | None:
    """A new version when what the report says has changed; None when it has not (or the
    job has nothing to report yet). Commits."""
    if job.status != JobStatus.COMPLETED:
        return None
    # One build at a time per job (the job's row is locked until the commit; SQLite writes
    # one at a time anyway): two workers never number the same version.
    db.session.execute(select(TrainingJob.id).where(TrainingJob.id == job.id).with_for_update())
    last = newest(job)
    number = (last.version if last else 0) + 1
    ctx = report_context.gather(job, number)
    mark = fingerprint(ctx)
    if last and last.fingerprint == mark:
        return None
    started = time.perf_counter()
    page, pdf = render_page_and_pdf(ctx, pdf_url=PDF_URL)
    seconds = time.perf_counter() - started
    key = key_of(job, number, mark)
    storage = get_storage()
    storage.put_bytes(html_key(key), page.encode())        # the share page's
    storage.put_bytes(key, pdf)
    row = ValidationReport(training_job_id=job.id, version=number, storage_key=key, size_bytes=len(pdf),
                           fingerprint=mark, trigger=trigger, build_seconds=seconds)
    db.session.add(row)
    art = db.session.scalars(select(ModelArtifact).where(ModelArtifact.training_job_id == job.id)).first()
    if art is not None:
        art.validation_report_path = key
    db.session.commit()
    return row

