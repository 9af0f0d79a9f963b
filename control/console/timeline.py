"""The stage indicators of a job page: where it is, and the time it spent in each stage."""
from __future__ import annotations

from datetime import datetime

from control.models import JobStatus
from shared.events import STAGES


def _parse(ts: str) -> datetime:
    return datetime.fromisoformat(ts.replace("Z", "+00:00"))


def stage_timeline(events: list[tuple[str, str, str | None]], status: str, now: datetime,
                   ended_at: datetime | None = None) -> list[dict]:
    """Each stage's state and seconds, from ``(ts, type, stage)`` tuples in arrival order.

    A stage lasts from its ``stage`` event to the next ``stage``, ``completed`` or ``error``
    event. Attempts after a lost worker run the stages again; their times add up. An open
    stage runs until ``now`` while the job is active, else until ``ended_at``.

    >>> from datetime import datetime, timezone
    >>> t = lambda s: f"2026-01-01T00:00:{s:02d}Z"
    >>> evs = [(t(0), "stage", "preprocessing"), (t(2), "stage", "model_loading"),
    ...        (t(5), "stage", "training")]
    >>> now = datetime(2026, 1, 1, 0, 0, 20, tzinfo=timezone.utc)
    >>> [(s["stage"], s["state"], s["seconds"]) for s in stage_timeline(evs, "training", now)]
    [('preprocessing', 'done', 2.0), ('model_loading', 'done', 3.0), ('training', 'current', 15.0), ('evaluating', 'upcoming', None), ('finalizing', 'upcoming', None)]
    >>> evs += [(t(30), "stage", "evaluating"), (t(31), "stage", "finalizing"), (t(33), "completed", None)]
    >>> [s["state"] for s in stage_timeline(evs, "completed", now)]
    ['done', 'done', 'done', 'done', 'done']
    >>> stage_timeline(evs[:3], "failed", now, ended_at=now)[2]["state"]
    'stopped'
    """
    spent: dict[str, float] = {}
    reached: str | None = None
    open_stage, opened = None, None
    for ts, kind, stage in events:
        if kind not in ("stage", "completed", "error"):
            continue
        at = _parse(ts)
        if open_stage is not None:
            spent[open_stage] = spent.get(open_stage, 0.0) + max(0.0, (at - opened).total_seconds())
        open_stage, opened = (stage, at) if kind == "stage" else (None, None)
        if kind == "stage":
            reached = stage
    active = status not in JobStatus.FINAL
    if open_stage is not None:
        end = now if active else (ended_at or now)
        spent[open_stage] = spent.get(open_stage, 0.0) + max(0.0, (end - opened).total_seconds())
    last = STAGES.index(reached) if reached in STAGES else -1
    out = []
    for i, stage in enumerate(STAGES):
        if i < last or (i == last and status == JobStatus.COMPLETED):
            state = "done"
        elif i == last:
            state = "current" if active else "stopped"
        else:
            state = "upcoming"
        out.append({"stage": stage, "state": state,
                    "seconds": round(spent[stage], 1) if stage in spent else None})
    return out
