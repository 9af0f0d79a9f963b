"""Finished training runs as database rows, for tests of the pages and routes that only read
records (compare, templates, history): no worker trains anything.

``seed_finished_runs(app, user, n=3)`` writes one ready training file and ``n`` completed
jobs of it, each with its configuration in the shape ``training_jobs.create`` stores, one
metric point per optimizer step (training loss and learning rate every step, validation
loss every 10th), its attempts (the second run was interrupted once, spot reclaimed, and
resumed), and a completed re-evaluation (``EvaluationRun``) whose summary carries the
measures as the handler computes them. The runs differ on purpose, so each row of a
comparison has one clear best:

==========  ===========  ==========  =============  ==========  ===========  ============
run         preset, lr   perplexity  final loss     cost        duration     tokens/s
==========  ===========  ==========  =============  ==========  ===========  ============
"run A"     balanced,    31.5% [..]  highest        $1.20       40 min       1,800
            2e-4
"run B"     aggressive,  38.2% best  lowest         $2.45       75 min       1,500
            5e-4                                                 (1 interruption)
"run C"     conservative 24.0%       middle         $0.85 best  30 min best  2,100 best
            1e-4
==========  ===========  ==========  =============  ==========  ===========  ============

A fourth and fifth run (``n`` up to 5) follow the same pattern with other figures. Call it
inside the app's context (the ``app`` fixture holds one open); it commits and returns the
jobs' ids, in order.
"""
from __future__ import annotations

import hashlib
import math
from datetime import timedelta

from control.extensions import db
from control.models import (AttemptOutcome, EvaluationRun, EvaluationStatus, JobAttempt, JobStatus, MetricPoint,
                            TrainingFile, TrainingFileStatus, TrainingJob, User, new_id, utcnow)
from shared.evaluation.measures import all_measures
from shared.evaluation.statistics import win_rate
from shared.job_input import Hyperparameters
from shared.storage.layout import JobLayout

STEPS = 60
VALIDATE_EVERY = 10
# name, preset, overrides, perplexity gain and interval, loss floor, cost, minutes, tokens/s,
# interrupted once, forgetting retention
RUNS = (
    ("run A", "balanced", {"learning_rate": 2e-4}, 31.5, (24.1, 37.9), 1.10, 1.20, 40.0, 1800.0, False, 97.5),
    ("run B", "aggressive", {"learning_rate": 5e-4, "lora_r": 32}, 38.2, (30.4, 45.0), 0.85, 2.45, 75.0, 1500.0,
     True, 93.0),
    ("run C", "conservative", {"learning_rate": 1e-4}, 24.0, (16.2, 31.1), 0.97, 0.85, 30.0, 2100.0, False, 99.0),
    ("run D", "balanced", {"learning_rate": 3e-4, "num_epochs": 4}, 29.0, (21.0, 36.0), 1.02, 1.60, 52.0, 1700.0,
     False, 96.0),
    ("run E", "balanced", {"learning_rate": 2e-4, "lora_r": 8}, 27.5, (20.0, 34.0), 1.05, 1.10, 38.0, 1900.0,
     False, 98.0),
)


def _user(user) -> User:
    return user if isinstance(user, User) else db.session.get(User, user)


def training_file(user: User, filename: str = "harbor-lane-conversations.json") -> TrainingFile:
    """A validated, ready training file row (nothing in storage: no job here is dispatched)."""
    sha = hashlib.sha256(filename.encode()).hexdigest()
    row = TrainingFile(id=new_id("file"), filename=filename, format="brightrun-lora-v4",
                       storage_key=f"datasets/{sha}.json", sha256=sha, size_bytes=48_213,
                       status=TrainingFileStatus.READY, statistics={"conversations": 120, "trainable_pairs": 410},
                       validated_at=utcnow(), created_by=user.id)
    db.session.add(row)
    db.session.flush()
    return row


def _curve(step: int, floor: float, lr: float, steps: int = STEPS) -> dict:
    """A loss that falls towards ``floor`` (with a little deterministic wobble), a
    cosine learning rate after a short warm-up."""
    training = floor + 1.6 * math.exp(-step / 14) + 0.03 * math.sin(step * 1.7)
    warm = max(1, steps // 20)
    rate = lr * step / warm if step <= warm else lr * 0.5 * (1 + math.cos(math.pi * (step - warm) / (steps - warm)))
    return {"training_loss": round(training, 4), "learning_rate": rate,
            "validation_loss": round(floor + 0.12 + 1.5 * math.exp(-step / 16), 4) if step % VALIDATE_EVERY == 0
            else None}


def _summary(gain: float, interval: tuple[float, float], retention: float) -> dict:
    """A re-evaluation's summary as ``re_evaluation.apply`` stores it (the evaluation event's fields)."""
    base_ppl = 31.66
    trained_ppl = round(base_ppl * (1 - gain / 100), 3)
    parts = {
        "perplexity": {"split": "validation", "conversations": 24, "targets": 71, "tokens": 6380,
                       "base": {"loss": round(math.log(base_ppl), 4), "perplexity": base_ppl},
                       "trained": {"loss": round(math.log(trained_ppl), 4), "perplexity": trained_ppl},
                       "improvement_pct": gain, "interval_pct": list(interval)},
        "forgetting": {"base": {"accuracy": 0.8, "by_topic": {}}, "adapter": {"accuracy": round(0.8 * retention / 100, 4),
                                                                        "by_topic": {}},
                       "retention_pct": retention, "questions": 100},
        "similarity": {"n": 71, "base_mean": 0.41, "adapter_mean": round(0.41 + gain / 200, 3),
                       "win_rate": win_rate(40 + int(gain / 2), 3, 28 - int(gain / 2))},
    }
    measures = all_measures(parts)
    p = parts["perplexity"]
    return {"split": "validation", "conversations": p["conversations"], "targets": p["targets"],
            "tokens": p["tokens"], "base": p["base"], "trained": p["trained"], "improvement_pct": gain,
            "key": None, "run_id": None, "measures": [m.model_dump(mode="json") for m in measures],
            "suites": {"heldout": {"samples": 71, "categories": {}}}, "flags": []}


def seed_finished_runs(app, user, n: int = 3, *, file: TrainingFile | None = None, first: int = 0) -> list[str]:
    """``n`` completed jobs of one training file (``file``, or a new one), as rows: the module's
    table from its row ``first`` (0: run A), 5 at most in all. Returns their ids, in order."""
    if n < 1 or first < 0 or first + n > len(RUNS):
        raise ValueError(f"seed_finished_runs: runs {first + 1} to {first + n} asked, there are {len(RUNS)}")
    owner = _user(user)
    file = file or training_file(owner)
    now = utcnow()
    ids = []
    for i, (name, preset, overrides, gain, interval, floor, cost, minutes, tps, interrupted, retention) in \
            enumerate(RUNS[first:first + n], start=first):
        hp = Hyperparameters.for_preset(preset, overrides).model_dump(mode="json")
        job_id = new_id("tj")
        started = now - timedelta(days=len(RUNS) - i, minutes=minutes + 5)
        completed = started + timedelta(minutes=minutes)
        job = TrainingJob(
            id=job_id, training_file_id=file.id, name=name, description=f"{preset} preset, learning rate "
            f"{hp['learning_rate']:g}", tags=["compare-seed"], preset=preset, base_model="embedded", method="lora",
            gpu_type="H100_PCIE", gpu_pricing_tier="spot", status=JobStatus.COMPLETED, current_stage="finalizing",
            progress_percentage=100.0, started_at=started, completed_at=completed, cost_estimate=round(cost * 1.1, 2),
            actual_cost=cost, estimated_duration_minutes=minutes, actual_duration_minutes=minutes,
            current_step=STEPS, total_steps=STEPS, latest_loss=_curve(STEPS, floor, hp["learning_rate"])["training_loss"],
            perplexity_gain_pct=gain, storage_prefix=JobLayout.for_job(job_id).prefix, created_by=owner.id,
            created_at=started - timedelta(minutes=3), checkpoint_recovery_count=1 if interrupted else 0,
            configuration={"hyperparameters": hp, "overrides": overrides, "checkpoint_every_steps": 20,
                           "gpu": {"type": "H100_PCIE", "pricing": "spot", "price_per_hour": 2.39,
                                   "endpoint_id": "local"},
                           "base_model": "embedded", "method": "lora", "estimate": {"cost_usd": round(cost * 1.1, 2)},
                           "evaluation": {"size": "quick", "max_new_tokens": 256, "prompts_file_id": None}})
        db.session.add(job)
        db.session.flush()          # its rows below name it (no relationship orders them)
        attempts = [(1, AttemptOutcome.LOST, started, started + timedelta(minutes=minutes / 2)),
                    (2, AttemptOutcome.COMPLETED, started + timedelta(minutes=minutes / 2 + 1), completed)] \
            if interrupted else [(1, AttemptOutcome.COMPLETED, started, completed)]
        for number, outcome, begun, ended in attempts:
            db.session.add(JobAttempt(training_job_id=job_id, number=number, runpod_job_id=f"rp-{job_id}-{number}",
                                      runpod_status="COMPLETED" if outcome == AttemptOutcome.COMPLETED else "FAILED",
                                      dispatched_at=begun, started_at=begun, ended_at=ended, outcome=outcome,
                                      last_step=STEPS if outcome == AttemptOutcome.COMPLETED else STEPS // 2,
                                      steps_lost=3 if outcome == AttemptOutcome.LOST else None,
                                      error={"message": "spot instance reclaimed"} if outcome == AttemptOutcome.LOST
                                      else None))
        db.session.add_all([MetricPoint(training_job_id=job_id, attempt=len(attempts), step=s,
                                        epoch=round(s / (STEPS / hp["num_epochs"]), 3),
                                        tokens_per_second=tps + 10 * math.sin(s), elapsed_seconds=s * minutes,
                                        **_curve(s, floor, hp["learning_rate"]))
                            for s in range(1, STEPS + 1)])
        db.session.add(EvaluationRun(training_job_id=job_id, status=EvaluationStatus.COMPLETED,
                                     settings={"size": "quick", "max_new_tokens": 256, "prompts_file_id": None},
                                     summary=_summary(gain, interval, retention), created_by=owner.id,
                                     created_at=completed, started_at=completed,
                                     completed_at=completed + timedelta(minutes=4)))
        ids.append(job_id)
    db.session.commit()
    return ids
