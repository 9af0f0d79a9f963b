"""What a job hands out: the adapter ZIP behind a signed link (counted), and its metrics.

The adapter goes out as a ZIP (weights, config, a README with integration instructions)
through a signed URL valid 24 hours: Supabase's own, or, with local storage, one this app
signs and serves at ``/api/training/downloads/<token>``. The JSON API and the console both
hand out downloads through these functions.
"""
from __future__ import annotations

import csv
import io
import json
import os
import tempfile
import zipfile
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app, url_for
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import select

from control.extensions import db
from control.models import METRIC_FIELDS, JobStatus, MetricPoint, ModelArtifact, TrainingJob, User, iso, utcnow
from control.services import audit, packages
from control.services.exceptions import JobStateError
from control.services.storage import get_storage

METRICS_FORMATS = ("csv", "json")

ADAPTER_README = """# {name}

LoRA adapter trained by job `{job_id}` on `{base_model}` ({method}, preset {preset}).
Held-out perplexity: base {base_ppl}, adapter {trained_ppl} ({improvement}).

## Use it

```python
from transformers import AutoModelForCausalLM, AutoTokenizer
from peft import PeftModel

base = AutoModelForCausalLM.from_pretrained("{base_model}")
tokenizer = AutoTokenizer.from_pretrained("{base_model}")
model = PeftModel.from_pretrained(base, "adapter")   # this folder, unzipped
```

Merge it for serving with `model.merge_and_unload()`.
"""


@dataclass(frozen=True)
class SignedLink:
    url: str
    expires_at: str
    filename: str


def link_serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="download")


def completed_artifact(job: TrainingJob) -> ModelArtifact:
    """The job's artifacts row, once it has completed with an adapter; else ``JobStateError``."""
    row = db.session.scalar(select(ModelArtifact).where(ModelArtifact.training_job_id == job.id))
    if job.status != JobStatus.COMPLETED or row is None or not row.adapter_path:
        raise JobStateError(job, "download from", "downloads exist once it has completed", code="not_ready")
    return row


def _adapter_zip(job: TrainingJob, art: ModelArtifact) -> str:
    """Build the adapter ZIP once (in a temporary file, not in memory) and store it."""
    storage = get_storage()
    key = job.layout.adapter_zip
    if storage.exists(key):
        return key
    ev = art.evaluation or {}
    readme = ADAPTER_README.format(
        name=job.name, job_id=job.id, base_model=job.base_model, method=job.method,
        preset=job.preset, base_ppl=art.base_perplexity, trained_ppl=art.trained_perplexity,
        improvement=f"{ev.get('improvement_pct')}% better" if ev.get("improvement_pct") is not None else "n/a")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "adapter.zip")
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            for obj in storage.list(art.adapter_path):
                local = os.path.join(tmp, "part")
                storage.get_file(obj, local)
                zf.write(local, "adapter/" + obj[len(art.adapter_path):].lstrip("/"))
            zf.writestr("README.md", readme)
        storage.put_file(key, path)
    return key


def _signed_link(job: TrainingJob, key: str, filename: str) -> SignedLink:
    ttl = current_app.config["DOWNLOAD_LINK_TTL_S"]
    url = get_storage().signed_url(key, ttl)
    if url is None:
        token = link_serializer().dumps({"key": key, "job": job.id, "name": filename})
        url = url_for("api.signed_download", token=token, _external=True)
    return SignedLink(url, iso(utcnow() + timedelta(seconds=ttl)), filename)


def audit_download(job: TrainingJob, by: User | None, kind: str) -> None:
    """The trail's entry for ``by`` downloading ``kind`` (adapter, deployment_package,
    metrics, validation_report, evaluation_summary) of ``job``. The caller commits."""
    audit.record("job.downloaded", actor=by, target_type="job", target_id=job.id, job_id=job.id,
                 details={"kind": kind})


def record_download(job: TrainingJob, by: User | None, kind: str) -> None:
    """``audit_download``, committed (a download that changes nothing else). Commits."""
    audit_download(job, by, kind)
    db.session.commit()


def _counted_link(job: TrainingJob, build, filename: str, by: User | None, kind: str) -> SignedLink:
    """A signed link to what ``build(job, artifact)`` stored (built on first use); counts
    the download, and the trail says who. Commits."""
    art = completed_artifact(job)
    key = build(job, art)
    art.download_count = (art.download_count or 0) + 1
    art.last_downloaded_at = utcnow()
    audit_download(job, by, kind)
    db.session.commit()
    return _signed_link(job, key, filename)


def adapter_link(job: TrainingJob, by: User | None = None) -> SignedLink:
    """A signed link to the adapter ZIP."""
    return _counted_link(job, _adapter_zip, f"{job.id}-adapter.zip", by, "adapter")


def package_link(job: TrainingJob, by: User | None = None) -> SignedLink:
    """A signed link to the deployment package."""
    return _counted_link(job, packages.package_key, f"{job.id}-deployment-package.zip", by, "deployment_package")


def metrics_export(job: TrainingJob, fmt: str, by: User | None = None) -> tuple[str, str, str]:
    """Every metric point of the job as ``(body, mimetype, filename)``; ``fmt`` is csv or json.
    With ``by``, the trail records the download (and this commits)."""
    if fmt not in METRICS_FORMATS:
        raise ValueError(f"unknown format {fmt!r}: expected csv or json")
    if by is not None:
        record_download(job, by, "metrics")
    rows = db.session.scalars(select(MetricPoint).where(MetricPoint.training_job_id == job.id)
                              .order_by(MetricPoint.step)).all()
    name = f"{job.id}-metrics.{fmt}"
    if fmt == "json":
        return json.dumps([r.to_dict() for r in rows]), "application/json", name
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=METRIC_FIELDS)
    writer.writeheader()
    writer.writerows(r.to_dict() for r in rows)
    return buf.getvalue(), "text/csv", name
