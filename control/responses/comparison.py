"""A comparison of 2 to 4 runs as the API shows it (``GET /api/training/jobs/compare``)."""
from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from control.models.job_status import JobStatus
from control.responses.common import Out, Timestamp

Pairs = list[list[float]]


class CompareCurves(Out):
    """The curves drawn, as ``[step, value]`` pairs; thinned to every ``every_nth`` step (every
    validation point and the last step kept)."""

    last_step: int | None = Field(description="the job's last recorded step; null: none yet")
    every_nth: int
    training_loss: Pairs
    validation_loss: Pairs
    learning_rate: Pairs


class CompareRun(Out):
    id: str
    name: str
    status: JobStatus
    final: bool = Field(description="the job has ended (completed, failed or cancelled)")
    training_file_id: str
    dataset: str = Field(description="the training file's name")
    preset: str
    base_model: str
    method: str
    created_at: Timestamp
    completed_at: Timestamp | None
    evaluation_run: str | None = Field(description="the evaluation the measures come from: 'training' or a "
                                                   "re-evaluation's id; null: not evaluated")
    curves: CompareCurves


class CompareCell(Out):
    job_id: str
    value: float | None = Field(description="the figure ranked; null: this run has none")
    text: str = Field(description="the figure as people read it")
    interval: list[float] | None = Field(description="the 95% interval, for a measure that has one")
    status: str | None = Field(description="a measure's status (met, not_met, ...) or the delivery standing")
    final: bool = Field(description="false: a running job's figure so far, not ranked")
    best: bool = Field(description="the best of its row (ties share it)")


class CompareRow(Out):
    id: str
    label: str
    better: Literal["higher", "lower"]
    cells: list[CompareCell]


class ConfigDifference(Out):
    field: str = Field(description="the setting, dotted: hyperparameters.learning_rate")
    values: list[Any] = Field(description="each run's value, in the runs' order; null: not set")


class Comparison(Out):
    runs: list[CompareRun]
    rows: list[CompareRow]
    config_differences: list[ConfigDifference] = Field(description="only the settings that differ")
    same_dataset: bool
    notices: list[str] = Field(description="different datasets, runs not finished")
