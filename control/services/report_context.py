"""The validation report's facts, gathered from the job's rows, its evaluation and people's
reviews into one ``ReportContext`` (``control/services/report``), which renders without
looking anything up.

Before/after examples are picked honestly: the scenarios people (or, before them, the
automatic judge) preferred the adapter on most, and at least one where the base model won
when there is one; without either, held-out turns by similarity to the reference reply.
"""
from __future__ import annotations

import json
from collections import Counter
from importlib import metadata

from sqlalchemy import select

from control.extensions import db
from control.models import MetricPoint, ModelArtifact, TrainingFile, TrainingJob, User, iso, utcnow
from control.services import delivery_decisions, evaluations, review_scores
from control.services.exceptions import NotFound
from control.services.report import ReportContext
from control.services.storage import get_storage
from shared.evaluation.report import Sample

EXAMPLES_WON = 3
EMBEDDED_NAME = "SmolLM2-135M-Instruct (the embedded model)"
CONTROL_SOFTWARE = ("flask", "weasyprint", "scipy", "krippendorff")


def _email(user_id: str | None) -> str:
    user = db.session.get(User, user_id) if user_id else None
    return user.email if user else "unknown"


def _training_summary(art: ModelArtifact | None) -> dict:
    if art is None or not art.summary_path or not get_storage().exists(art.summary_path):
        return {}
    return json.loads(get_storage().get_bytes(art.summary_path))


def _software(summary: dict) -> dict[str, str]:
    found = dict(summary.get("software") or {})
    for name in CONTROL_SOFTWARE:
        try:
            found.setdefault(name, metadata.version(name))
        except metadata.PackageNotFoundError:
            continue
    return found


def _job(job: TrainingJob, summary: dict) -> dict:
    attempts = sorted(job.attempts, key=lambda a: a.number)
    return {
        "id": job.id, "name": job.name, "description": job.description, "created_by": _email(job.created_by),
        "base_model": EMBEDDED_NAME if job.base_model == "embedded" else job.base_model,
        "method": job.method, "preset": job.preset,
        "configuration": job.configuration.get("hyperparameters", {}), "gpu_type": job.gpu_type,
        "gpu_pricing_tier": job.gpu_pricing_tier, "started_at": iso(job.started_at),
        "completed_at": iso(job.completed_at), "duration_minutes": job.actual_duration_minutes,
        "cost_estimate": job.cost_estimate, "actual_cost": job.actual_cost,
        "attempts": [{"number": a.number, "outcome": a.outcome or "running", "started_at": iso(a.started_at),
                      "ended_at": iso(a.ended_at), "worker": a.runpod_job_id} for a in attempts],
        "interruptions": sum(1 for a in attempts if a.interruption()),
        "retry_count": job.retry_count, "checkpoint_recovery_count": job.checkpoint_recovery_count,
        "software": _software(summary)}


def _dataset(job: TrainingJob, summary: dict) -> dict:
    row = db.session.get(TrainingFile, job.training_file_id)
    stats = dict(row.statistics or {}) if row else {}
    data = summary.get("data") or {}
    split = None
    if data.get("conversations"):
        train, val = data.get("train_conversations", 0), data.get("validation_conversations", 0)
        split = {"train": train, "validation": val, "fraction": round(val / max(train + val, 1), 4)}
    return {"filename": row.filename if row else job.training_file_id, "sha256": row.sha256 if row else "0" * 64,
            "format": (row.format if row else None) or data.get("format") or "unknown",
            "conversations": data.get("conversations", stats.get("conversations", 0)),
            "trainable_pairs": stats.get("trainable_pairs", data.get("pairs", 0)),
            "statistics": {k: v for k, v in stats.items() if not isinstance(v, (dict, list))},
            "folding": data.get("folding"), "split": split}


def _example(sample: Sample, winner: str, why: str, title: str) -> dict:
    turns = sample.turns
    return {"suite": sample.suite, "id": sample.id, "title": title, "system": sample.system,
            "prompt": turns[-1]["content"] if turns else "", "context_turns": max(0, len(turns) - 1), "base": sample.base, "adapter": sample.adapter,
            "reference": sample.reference, "winner": winner, "why": why}


def _examples(job: TrainingJob, run_id: str, judge: dict | None) -> list[dict]:
    layout = evaluations.layout_of(job, run_id)
    ei = {s.id: s for s in review_scores.items(job, layout, "ei")}
    votes: dict[str, Counter] = {}
    for r in review_scores.rows(job, run_id, "ei"):
        votes.setdefault(r.item_id, Counter())[r.preference] += 1
    scored: list[tuple[float, str, str, str]] = []        # (margin, id, winner, why)
    if votes:
        for item_id, c in votes.items():
            n, margin = sum(c.values()), (c["adapter"] - c["base"]) / sum(c.values())
            winner = "adapter" if margin > 0 else "base" if margin < 0 else "tie"
            side = max(c["adapter"], c["base"])
            scored.append((margin, item_id, winner, f"{side} of {n} reviewer{'s' if n != 1 else ''} preferred "
                                                    f"the {'adapter' if winner == 'adapter' else 'base model'}"
                           if winner != "tie" else f"the {n} reviewers were split"))
    elif judge:
        for v in judge.get("items", []):
            suite, _, item_id = v["id"].partition("/")
            winner = {"win": "adapter", "loss": "base", "tie": "tie"}.get(v.get("verdict"))
            if suite == "ei" and winner:
                margin = {"adapter": 1.0, "base": -1.0, "tie": 0.0}[winner]
                scored.append((margin, item_id, winner, f"the automatic judge ({judge['model']}) preferred "
                               f"the {'adapter' if winner == 'adapter' else 'base model'}"
                               if winner != "tie" else "the automatic judge called it a tie"))
    scored = [s for s in scored if s[1] in ei]
    if not scored:
        return _by_similarity(job, layout)
    scored.sort(key=lambda s: (-s[0], s[1]))
    chosen = [s for s in scored if s[2] == "adapter"][:EXAMPLES_WON]
    lost = [s for s in scored if s[2] == "base"]
    if lost:
        chosen.append(lost[-1])
    if len(chosen) < EXAMPLES_WON:
        chosen += [s for s in scored if s not in chosen][:EXAMPLES_WON - len(chosen)]
    return [_example(ei[i], w, why, (ei[i].category or "scenario").replace("_", " ").capitalize())
            for _, i, w, why in chosen]


def _by_similarity(job: TrainingJob, layout) -> list[dict]:
    """Held-out turns where the answers' similarity to the reference differs most."""
    rows = [s for s in review_scores.items(job, layout, "heldout_all")
            if s.scores.get("adapter_similarity") is not None]
    rows.sort(key=lambda s: s.scores["base_similarity"] - s.scores["adapter_similarity"])
    won = [s for s in rows if s.scores["adapter_similarity"] > s.scores["base_similarity"]][:EXAMPLES_WON]
    lost = [s for s in rows if s.scores["adapter_similarity"] < s.scores["base_similarity"]][-1:]
    return [_example(s, "adapter" if s in won else "base",
                     f"closer to the reference reply (similarity {s.scores['adapter_similarity']:.2f} "
                     f"against {s.scores['base_similarity']:.2f})", f"Held-out turn {s.id}")
            for s in won + lost]


def _gate(job: TrainingJob, view: dict) -> dict:
    standing = delivery_decisions.gate_of(job, view)
    decisions = [{"decision": d["decision"], "reason": d["reason"], "by": d["decided_by_email"] or "unknown",
                  "at": d["decided_at"]} for d in standing["history"]]
    current = decisions[0] if standing["decision"] else None
    if current:
        verdict = current["decision"]
        reason = current["reason"]
    elif standing["standing"] == "not_met":
        verdict = "not_met"
        missed = [i["name"] for i in standing["items"] if i["status"] in ("not_met", "not_measured")]
        reason = ("Not every target is met: " + ", ".join(missed) + "." if missed
                  else "Nothing was measured against the targets.") + " No one has decided on delivery yet."
    else:
        verdict = "waiting_for_review"
        waiting = [i["name"] for i in standing["items"] if i["status"] == "waiting_for_review"]
        reason = ("Waiting for people's blind scores on " + ", ".join(waiting) + "." if waiting
                  else "Every target is met; a reviewer has yet to approve it for delivery.")
    return {"verdict": verdict, "reason": reason, "items": standing["items"], "decision": current,
            "history": list(reversed(decisions))}


def gather(job: TrainingJob, version: int) -> ReportContext:
    """Everything the report shows for ``job``, as version ``version``."""
    art = db.session.scalars(select(ModelArtifact).where(ModelArtifact.training_job_id == job.id)).first()
    summary = _training_summary(art)
    try:
        view = evaluations.view(job)
    except NotFound:
        view = {"measures": [], "run": None}
    run_id = (view.get("run") or {}).get("id")
    people = view.get("reviews") or {}
    metrics = db.session.scalars(select(MetricPoint).where(MetricPoint.training_job_id == job.id)
                                 .order_by(MetricPoint.step)).all()
    return ReportContext.model_validate({
        "version": version, "generated_at": iso(utcnow()), "job": _job(job, summary),
        "dataset": _dataset(job, summary), "measures": view.get("measures", []), "gate": _gate(job, view),
        "reviews": {"ei": people.get("ei"), "brand": people.get("brand"),
                    "rubric_name": (people.get("rubric") or {}).get("name", "Brand voice")},
        "forgetting": view.get("forgetting"),
        "metrics": [{"step": m.step, "training_loss": m.training_loss, "validation_loss": m.validation_loss}
                    for m in metrics],
        "examples": _examples(job, run_id, evaluations.judge_report(job, run_id)) if run_id else [],
        "evaluation": {"size": view.get("size"), "max_new_tokens": view.get("max_new_tokens"), "run_id": run_id,
                       "timings": view.get("timings") or {}, "flags": view.get("flags") or []}})
