"""What a comparison reads for each run: its curves (thinned in the query, only the columns
drawn, with the steps' throughput), its newest completed evaluation's measures, its
interruptions and where it stands at the delivery gate; what can be read for all the runs
at once is (their last steps, their evaluations on record, their datasets' names)."""
from __future__ import annotations

import math
from collections.abc import Sequence

from sqlalchemy import func, or_, select

from control.extensions import db
from control.models import EvaluationRun, EvaluationStatus, MetricPoint, ModelArtifact, TrainingFile, TrainingJob, User
from control.services import evaluations
from control.services.exceptions import NotFound
from shared.evaluation import gate
from shared.evaluation.report import Measure

CURVE_POINTS = 400        # per run: a chart shows no more (validation points and the last step come on top)
CURVES = ("training_loss", "validation_loss", "learning_rate")


def last_steps(job_ids: Sequence[str]) -> dict[str, int | None]:
    """Each job's last recorded step, in one statement (each a backward step of the index)."""
    ids = list(job_ids)
    row = db.session.execute(select(*(select(func.max(MetricPoint.step)).where(
        MetricPoint.training_job_id == job_id).scalar_subquery() for job_id in ids))).one()
    return dict(zip(ids, row))


def curves(job_id: str, last_step: int | None, max_points: int = CURVE_POINTS) -> dict:
    """The job's training loss, validation loss and learning rate as ``[step, value]`` pairs,
    every ``every_nth`` step (and every validation point, and the last step), and the mean
    tokens per second of those steps (an even sample of them all when thinned)."""
    every = max(1, math.ceil((last_step or 0) / max_points))
    cond = [MetricPoint.training_job_id == job_id]
    if every > 1:
        cond.append(or_(MetricPoint.step % every == 0, MetricPoint.step == last_step,
                        MetricPoint.validation_loss.is_not(None)))
    rows = db.session.execute(select(MetricPoint.step, MetricPoint.tokens_per_second,
                                     *(getattr(MetricPoint, c) for c in CURVES))
                              .where(*cond).order_by(MetricPoint.step)).all()
    out: dict = {c: [] for c in CURVES}
    speeds = []
    for step, speed, *values in rows:
        if speed is not None:
            speeds.append(speed)
        for name, value in zip(CURVES, values):
            if value is not None:
                out[name].append([step, value])
    return {"last_step": last_step, "every_nth": every, **out,
            "tokens_per_second": sum(speeds) / len(speeds) if speeds else None}


def evaluations_on_record(job_ids: Sequence[str]) -> dict[str, dict]:
    """The jobs with a completed evaluation (two statements for all of them): the newest one's
    id and the measures its row carries (a re-evaluation's summary, else the training run's)."""
    ids = list(job_ids)
    out: dict[str, dict] = {}
    for art in db.session.scalars(select(ModelArtifact).where(ModelArtifact.training_job_id.in_(ids))):
        if (art.evaluation or {}).get("measures") is not None:
            out[art.training_job_id] = {"run": evaluations.TRAINING_RUN, "measures": art.evaluation["measures"]}
    for run in db.session.scalars(select(EvaluationRun).where(
            EvaluationRun.training_job_id.in_(ids), EvaluationRun.status == EvaluationStatus.COMPLETED)
            .order_by(EvaluationRun.created_at, EvaluationRun.id)):            # the newest last, and kept
        out[run.training_job_id] = {"run": run.id, "measures": (run.summary or {}).get("measures") or []}
    return out


def measures_of(job: TrainingJob, viewer: User, record: dict | None) -> tuple[dict[str, Measure], str | None]:
    """The measures of the job's newest completed evaluation, by id, and that evaluation's id:
    as the job's page reads them (people's and the judge's scores counted, blinded for a
    reviewer mid-review), or, when its summary is not in storage, as its row (``record``,
    from :func:`evaluations_on_record`) carries them. A job never evaluated has none."""
    if record is None:
        return {}, None
    try:
        view = evaluations.view(job, viewer=viewer)
        found, run_id = view.get("measures", []), (view.get("run") or {}).get("id")
    except NotFound:
        found, run_id = record["measures"], record["run"]
    measures = [Measure.model_validate(m) for m in found]
    return {m.id: m for m in measures}, run_id if measures else None


def gate_standing(job: TrainingJob, measures: dict[str, Measure]) -> str | None:
    """A person's delivery decision, else where the gated measures stand; None: not evaluated."""
    if job.delivery_status in ("approved", "rejected"):
        return job.delivery_status
    items = gate.items(list(measures.values()))
    return gate.standing(items) if items else None


def interruptions(job: TrainingJob) -> int:
    return sum(1 for a in job.attempts if a.interruption())


def dataset_names(file_ids: Sequence[str]) -> dict[str, str]:
    rows = db.session.execute(select(TrainingFile.id, TrainingFile.filename)
                              .where(TrainingFile.id.in_(list(set(file_ids))))).all()
    return dict(rows)


def last_value(pairs: list[list]) -> float | None:
    """
    >>> last_value([[1, 2.5], [2, 2.1]]), last_value([])
    (2.1, None)
    """
    return pairs[-1][1] if pairs else None
