"""A job's checkpoints: the complete ones in storage, asking for one now, and continuing a
new job from one (``shared/storage/layout.py`` says where they are)."""
from __future__ import annotations

import json

from control.extensions import db
from control.models import JobStatus, TrainingJob, User, utcnow
from control.services.access import visible_job
from control.services.exceptions import JobStateError
from control.services.storage import get_storage
from shared.errors import ConfigError, Problem
from shared.job_input import Hyperparameters
from shared.storage.layout import complete_checkpoints, find_checkpoint


def checkpoints(job: TrainingJob) -> list[dict]:
    """The job's complete checkpoints in storage, newest first (the two newest are kept)."""
    return [{"step": c.step, "key": c.key, "created_at": c.manifest.get("created_at"),
             "reason": c.manifest.get("meta", {}).get("reason")}
            for c in complete_checkpoints(get_storage(), job.layout)]


def request_checkpoint(job: TrainingJob) -> TrainingJob:
    """Ask a training job to checkpoint at its next step (before a planned shutdown, say):
    a flag in storage the handler looks for every few seconds; the event log shows the
    checkpoint (reason ``requested``). Commits."""
    if job.status not in JobStatus.CHECKPOINTABLE:
        raise JobStateError(job, "checkpoint", "only a job that is training can checkpoint now")
    now = utcnow()
    get_storage().put_bytes(job.layout.checkpoint_request, json.dumps({"requested_at": now.isoformat()}).encode())
    job.checkpoint_requested_at = now
    db.session.commit()
    return job


def continue_point(user: User, job_id: str, step: int, base_model: str, method: str,
                   hp: Hyperparameters) -> tuple[TrainingJob, str]:
    """The job and checkpoint key a new job continues from: the checkpoint must exist, and
    its adapter must fit the new job's base model, method and LoRA shape."""
    source = visible_job(user, job_id)
    if not source.is_final:
        raise ConfigError([Problem("continue_from", f"job {job_id} is {source.status}: continue from the "
                                   "checkpoints of a finished job (its newest two are kept while it runs)",
                                   "continue_from.job_id")])
    key = source.layout.checkpoint(step)
    if find_checkpoint(get_storage(), key) is None:
        steps = [c["step"] for c in checkpoints(source)]
        raise ConfigError([Problem("continue_from", f"job {job_id} has no checkpoint of step {step}; "
                                   f"it has: {', '.join(map(str, steps)) or 'none'}", "continue_from.step")])
    theirs = source.configuration["hyperparameters"]
    clashes = [f"{k}: {theirs.get(k)} → {getattr(hp, k)}" for k in ("lora_r", "lora_alpha", "target_modules")
               if theirs.get(k) != getattr(hp, k)]
    if (source.base_model, source.method) != (base_model, method):
        clashes.insert(0, f"base model {source.base_model} ({source.method}) → {base_model} ({method})")
    if clashes:
        raise ConfigError([Problem("continue_from", "a checkpoint's adapter only fits the same base model, "
                                   "method, lora_r, lora_alpha and target modules; changed: "
                                   + "; ".join(clashes), "continue_from")])
    return source, key
