"""``/download/{adapters,metrics,validation-report,deployment-package}`` and signed links.

The adapter goes out as a ZIP (weights, config, a README with integration instructions)
through a signed URL valid 24 hours: Supabase's own, or, with local storage, one this app
signs and serves at ``/api/training/downloads/<token>``. Downloads are counted.
"""
from __future__ import annotations

import csv
import io
import json
import os
import tempfile
import zipfile
from datetime import timedelta

from flask import Response, current_app, g, jsonify, redirect, request, send_file, url_for
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import select

from control.api import bp
from control.api.errors import ApiError
from control.extensions import db
from control.models import METRIC_FIELDS, MetricPoint, ModelArtifact, utcnow
from control.services.jobs import visible_job
from control.services.storage import get_storage
from shared.storage import join

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


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="download")


def _completed_artifact(job) -> ModelArtifact:
    row = db.session.scalar(select(ModelArtifact).where(ModelArtifact.training_job_id == job.id))
    if job.status != "completed" or row is None or not row.adapter_path:
        raise ApiError(409, "not_ready", f"job {job.id} is {job.status}: downloads exist once it has completed")
    return row


def _adapter_zip(job, art: ModelArtifact) -> str:
    """Build the adapter ZIP once (in a temporary file, not in memory) and store it."""
    storage = get_storage()
    key = join(job.storage_prefix, "downloads", "adapter.zip")
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


def _signed_link(job, key: str, filename: str):
    ttl = current_app.config["DOWNLOAD_LINK_TTL_S"]
    url = get_storage().signed_url(key, ttl)
    if url is None:
        token = _serializer().dumps({"key": key, "job": job.id, "name": filename})
        url = url_for("api.signed_download", token=token, _external=True)
    expires = (utcnow() + timedelta(seconds=ttl)).isoformat(timespec="seconds").replace("+00:00", "Z")
    if request.args.get("redirect", "true").lower() in ("0", "false", "no"):
        return jsonify(url=url, expires_at=expires, filename=filename)
    return redirect(url, 302)


@bp.get("/training/jobs/<job_id>/download/<kind>")
def download(job_id, kind):
    job = visible_job(g.user, job_id)
    if kind == "adapters":
        art = _completed_artifact(job)
        key = _adapter_zip(job, art)
        art.download_count = (art.download_count or 0) + 1
        art.last_downloaded_at = utcnow()
        db.session.commit()
        return _signed_link(job, key, f"{job.id}-adapter.zip")
    if kind == "metrics":
        return _metrics_file(job)
    if kind == "validation-report":
        art = _completed_artifact(job)
        if not art.summary_path:
            raise ApiError(404, "not_available", f"job {job.id} has no evaluation summary")
        return Response(get_storage().get_bytes(art.summary_path), mimetype="application/json")
    if kind == "deployment-package":
        raise ApiError(404, "not_available", "deployment packages are not built yet; "
                       "download the adapter ZIP instead")
    raise ApiError(404, "not_found", f"unknown download {kind!r}: expected adapters, metrics, "
                   "validation-report or deployment-package")


def _metrics_file(job):
    fmt = request.args.get("format", "csv")
    if fmt not in ("csv", "json"):
        raise ApiError(400, "invalid_request", f"unknown format {fmt!r}: expected csv or json", "format")
    rows = db.session.scalars(select(MetricPoint).where(MetricPoint.training_job_id == job.id)
                              .order_by(MetricPoint.step)).all()
    name = f"{job.id}-metrics.{fmt}"
    headers = {"Content-Disposition": f'attachment; filename="{name}"'}
    if fmt == "json":
        return Response(json.dumps([r.to_dict() for r in rows]), mimetype="application/json", headers=headers)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=METRIC_FIELDS)
    writer.writeheader()
    writer.writerows(r.to_dict() for r in rows)
    return Response(buf.getvalue(), mimetype="text/csv", headers=headers)


@bp.get("/training/downloads/<token>")
def signed_download(token):
    """A link this app signed (local storage); no bearer token: the signature is the proof."""
    try:
        data = _serializer().loads(token, max_age=current_app.config["DOWNLOAD_LINK_TTL_S"])
    except SignatureExpired:
        raise ApiError(410, "expired", "this download link has expired; ask for a new one") from None
    except BadSignature:
        raise ApiError(404, "not_found", "invalid download link") from None
    storage = get_storage()
    if not storage.exists(data["key"]):
        raise ApiError(404, "not_found", "the file behind this link no longer exists")
    fd, tmp = tempfile.mkstemp(suffix=".zip")
    os.close(fd)
    storage.get_file(data["key"], tmp)
    response = send_file(tmp, as_attachment=True, download_name=data["name"])
    response.call_on_close(lambda: os.unlink(tmp))
    return response
