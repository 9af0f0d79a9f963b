"""What a message needs to know about its notice, read once when the notice fans out: the
job as it is now (its cost and duration are settled after the notice was written), its
headline measures once evaluated, its owner, and the links people follow. A job deleted
since is described from the notice's own snapshot."""
from __future__ import annotations

from sqlalchemy import select

from control.extensions import db
from control.models import ModelArtifact, Notice, TrainingJob, User


def job_links(base_url: str, job_id: str) -> dict:
    """The job page and its validation report.

    >>> job_links("https://br.example", "tj_1")["report_url"]
    'https://br.example/api/training/jobs/tj_1/download/validation-report'
    """
    return {"job_url": f"{base_url}/jobs/{job_id}",
            "report_url": f"{base_url}/api/training/jobs/{job_id}/download/validation-report"}


def gather(notice: Notice, base_url: str) -> dict:
    """The facts of ``notice`` as ``kinds.compose`` reads them."""
    payload = dict(notice.payload or {})
    facts = {"kind": notice.kind, "payload": payload, "base_url": base_url,
             "created_at": notice.created_at, "job": None}
    job = db.session.get(TrainingJob, notice.training_job_id) if notice.training_job_id else None
    if job is not None:
        facts["job"] = of_job(job, payload, base_url)
    elif payload.get("job_id"):
        facts["job"] = from_snapshot(payload, base_url)
    return facts


def of_job(job: TrainingJob, payload: dict, base_url: str) -> dict:
    """A job's facts from its row; the status is the one the notice reported."""
    art = db.session.scalar(select(ModelArtifact).where(ModelArtifact.training_job_id == job.id))
    owner = db.session.get(User, job.created_by) if job.created_by else None
    error = payload.get("error") or ({"type": job.error_type, "message": job.error_message,
                                      "cause": job.error_cause, "fix": job.error_fix} if job.error_type else None)
    perplexity = art.perplexity_improvement_pct if art else None
    retention = art.forgetting_retention if art else None
    if perplexity is None:
        perplexity = payload.get("perplexity_improvement_pct")
    if retention is None:
        retention = payload.get("forgetting_retention")
    return {"id": job.id, "name": job.name, "status": str(payload.get("status") or job.status),
            "owner": owner.email if owner else None, "tags": list(job.tags or []),
            "duration_min": job.actual_duration_minutes if job.actual_duration_minutes is not None
            else job.elapsed_minutes(),
            "cost_usd": job.actual_cost, "estimate_usd": job.cost_estimate,
            "projected_usd": job.projected_cost_usd, "max_cost_usd": job.max_cost_usd,
            "interruptions": job.checkpoint_recovery_count or 0, "error": error,
            "perplexity_pct": perplexity, "retention_pct": retention,
            "approval": job.approval or {}, **job_links(base_url, job.id)}


def from_snapshot(payload: dict, base_url: str) -> dict:
    """A deleted job, as its notice's snapshot (``notices.job_snapshot``) recorded it."""
    return {"id": payload["job_id"], "name": payload.get("name") or payload["job_id"],
            "status": str(payload.get("status") or "unknown"), "owner": None, "tags": [],
            "duration_min": None, "cost_usd": payload.get("actual_cost_usd"),
            "estimate_usd": payload.get("cost_estimate_usd"), "projected_usd": None, "max_cost_usd": None,
            "interruptions": payload.get("interruptions") or 0, "error": payload.get("error"),
            "perplexity_pct": payload.get("perplexity_improvement_pct"),
            "retention_pct": payload.get("forgetting_retention"), "approval": {},
            **job_links(base_url, payload["job_id"])}
