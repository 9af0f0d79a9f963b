"""The job input an attempt is dispatched with (``shared/job_input.py``, the one contract
control → handler): storage keys and settings, never secrets."""
from __future__ import annotations

from control.extensions import db
from control.models import TrainingFile, TrainingJob
from shared.job_input import (CheckpointSettings, DatasetRef, EvaluationSettings, Hyperparameters,
                              JobInput, PromptsRef, ValidationSettings)


def evaluation(settings: dict | None, run_id: str | None = None) -> EvaluationSettings:
    """The job input's evaluation settings from a job's (or a re-evaluation's) stored ones."""
    settings = settings or {}
    prompts = None
    if settings.get("prompts_file_id"):
        row = db.session.get(TrainingFile, settings["prompts_file_id"])
        if row is not None:
            prompts = PromptsRef(key=row.storage_key, sha256=row.sha256)
    return EvaluationSettings(size=settings.get("size"), max_new_tokens=settings.get("max_new_tokens", 256),
                              prompts=prompts, run_id=run_id)


def job_input(job: TrainingJob, attempt: int, time_left_s: float | None = None) -> JobInput:
    """Attempt ``attempt`` of ``job``, allowed ``time_left_s`` of the job's time limit."""
    training_file = db.session.get(TrainingFile, job.training_file_id)
    conf = job.configuration
    return JobInput(
        job_id=job.id, attempt=attempt,
        dataset=DatasetRef(key=training_file.storage_key, sha256=training_file.sha256,
                           format=training_file.format),
        base_model=job.base_model, method=job.method, preset=job.preset,
        hyperparameters=Hyperparameters.model_validate(conf["hyperparameters"]),
        checkpoint=CheckpointSettings(every_steps=conf["checkpoint_every_steps"], prefix=job.storage_prefix,
                                      init_from=conf.get("init_from")),
        validation=ValidationSettings(),
        evaluation=evaluation(conf.get("evaluation")),
        time_limit_seconds=max(1, int(time_left_s)) if time_left_s is not None else None)
