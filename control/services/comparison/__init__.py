"""Comparing 2 to 4 runs side by side: which settings won.

``compare(user, ids)`` gathers, for each job the user may see (``access.visible_job``: an
unknown or another user's job is not found, naming its id), its training and validation
loss curves and learning rate, and the figures of the table (``table.rows``: final losses,
the newest evaluation's measures with their intervals, cost, duration, tokens per second,
interruptions and the delivery decision, the best of each row marked), and the settings
that differ (``differences``). Runs of different datasets may be compared; the answer
says so in ``notices``. Reading is not audited.
"""
from __future__ import annotations

from collections.abc import Sequence

from control.models import User, iso
from control.schemas.comparison import MAX_RUNS, MIN_RUNS
from control.services.access import visible_job
from control.services.comparison import gather, table
from control.services.comparison.differences import differences, settings_of
from shared.errors import ConfigError, Problem

__all__ = ["MAX_RUNS", "MIN_RUNS", "compare"]


def _check(ids: Sequence[str]) -> None:
    if not MIN_RUNS <= len(ids) <= MAX_RUNS:
        raise ConfigError([Problem("query", f"compare {MIN_RUNS} to {MAX_RUNS} jobs: got {len(ids)}", "ids")])
    twice = next((i for n, i in enumerate(ids) if i in ids[:n]), None)
    if twice is not None:
        raise ConfigError([Problem("query", f"{twice} is given twice: name each job once", "ids")])


def _notices(runs: list[dict]) -> list[str]:
    out = []
    by_file: dict[str, list[str]] = {}
    for r in runs:
        by_file.setdefault(r["training_file_id"], []).append(r["name"])
    if len(by_file) > 1:
        groups = "; ".join(f"{next(r['dataset'] for r in runs if r['training_file_id'] == f)}: {', '.join(names)}"
                           for f, names in by_file.items())
        out.append(f"These runs trained on different datasets ({groups}). Their losses and measures come from "
                   "different conversations, so a lower loss need not mean better settings.")
    running = [r["name"] for r in runs if not r["final"]]
    if running:
        out.append(f"Not finished: {', '.join(running)}. Cost, duration and interruptions are so far, and are "
                   "not ranked.")
    return out


def compare(user: User, ids: Sequence[str]) -> dict:
    """The comparison of the jobs ``ids`` (2 to 4, each once, all visible to ``user``)."""
    ids = list(ids)
    _check(ids)
    jobs = [visible_job(user, i) for i in ids]
    last_steps = gather.last_steps(ids)
    on_record = gather.evaluations_on_record(ids)
    names = gather.dataset_names([j.training_file_id for j in jobs])
    runs, facts, settings = [], [], []
    for job in jobs:
        curves = gather.curves(job.id, last_steps[job.id])
        speed = curves.pop("tokens_per_second")
        measures, run_id = gather.measures_of(job, user, on_record.get(job.id))
        runs.append({"id": job.id, "name": job.name, "status": job.status, "final": job.is_final,
                     "training_file_id": job.training_file_id,
                     "dataset": names.get(job.training_file_id, job.training_file_id),
                     "preset": job.preset, "base_model": job.base_model, "method": job.method,
                     "created_at": iso(job.created_at), "completed_at": iso(job.completed_at),
                     "evaluation_run": run_id, "curves": curves})
        final_loss = gather.last_value(curves["training_loss"])
        facts.append({"job_id": job.id, "final": job.is_final,
                      "final_training_loss": job.latest_loss if final_loss is None else final_loss,
                      "final_validation_loss": gather.last_value(curves["validation_loss"]),
                      "measures": measures, "cost": job.actual_cost if job.started_at else None,
                      "duration_minutes": job.actual_duration_minutes if job.is_final else job.elapsed_minutes(),
                      "tokens_per_second": speed,
                      "interruptions": gather.interruptions(job), "gate": gather.gate_standing(job, measures)})
        settings.append(settings_of(job.configuration, preset=job.preset, rubric_id=job.rubric_id,
                                    max_cost_usd=job.max_cost_usd,
                                    dataset=f"{runs[-1]['dataset']} ({job.training_file_id})"))
    return {"runs": runs, "rows": table.rows(facts), "config_differences": differences(settings),
            "same_dataset": len({j.training_file_id for j in jobs}) == 1, "notices": _notices(runs)}
