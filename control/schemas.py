"""The request schemas, one per request body or query, strict: wrong types and unknown fields
are refused. The JSON API and the console validate with these same schemas, so both accept
exactly the same requests; the HTTP side of reading a request is ``control/api/requests.py``."""
from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.job_input import Method, PresetName, overrides_model
from shared.presets import DEFAULT_PRESET


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


# Single settings over the preset's, by the documents' names: every overridable setting of
# ``shared.job_input`` (OVERRIDABLE), with the job input's bounds and descriptions.
HyperparameterOverrides = overrides_model(
    "HyperparameterOverrides", base=_Strict,
    doc="Single settings over the preset's, by the documents' names.")


class GpuChoice(_Strict):
    type: Annotated[str, Field(min_length=1, max_length=32)] | None = None
    pricing: Literal["spot", "on_demand"] = "spot"


class ContinueFrom(_Strict):
    """Start from another job's checkpoint: its adapter weights, this job's own plan."""

    job_id: Annotated[str, Field(min_length=1, max_length=64)]
    step: Annotated[int, Field(ge=1)]


class CreateJob(_Strict):
    training_file_id: Annotated[str, Field(min_length=1, max_length=64)]
    preset: PresetName = DEFAULT_PRESET
    hyperparameters: HyperparameterOverrides = HyperparameterOverrides()
    base_model: Annotated[str, Field(min_length=1, max_length=255)] | None = None
    method: Method | None = None
    gpu: GpuChoice = GpuChoice()
    name: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    description: Annotated[str, Field(max_length=5000)] | None = None
    notes: Annotated[str, Field(max_length=20000)] | None = None
    tags: Annotated[list[Annotated[str, Field(min_length=1, max_length=50)]], Field(max_length=20)] = []
    start: bool = False
    continue_from: ContinueFrom | None = None


class RetryJob(_Strict):
    """A new job from a finished one: its settings, the failure's suggested adjustment
    (``apply_adjustment``), single overrides on top, optionally continuing from one of its
    checkpoints (``from_checkpoint_step``)."""

    apply_adjustment: bool = True
    hyperparameters: HyperparameterOverrides = HyperparameterOverrides()
    from_checkpoint_step: Annotated[int, Field(ge=1)] | None = None
    name: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    start: bool = False


class JobListQuery(_Strict):
    model_config = ConfigDict(extra="forbid")   # query strings are text: coerce
    page: Annotated[int, Field(ge=1)] = 1
    per_page: Annotated[int, Field(ge=1, le=200)] = 50
    status: str | None = None
    created_by: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    preset: str | None = None
    tag: str | None = None
    q: Annotated[str, Field(max_length=200)] | None = None
    sort: Literal["newest", "oldest", "name", "status", "cost", "progress"] = "newest"


class MetricsQuery(_Strict):
    model_config = ConfigDict(extra="forbid")
    since_step: Annotated[int, Field(ge=0)] | None = None
    max_points: Annotated[int, Field(ge=2, le=20000)] = 1000


class EventsQuery(_Strict):
    model_config = ConfigDict(extra="forbid")
    after_id: Annotated[int, Field(ge=0)] = 0
    limit: Annotated[int, Field(ge=1, le=1000)] = 200
    type: str | None = None
    attempt: Annotated[int, Field(ge=1)] | None = None


class _CostQuery(_Strict):
    model_config = ConfigDict(extra="forbid")
    training_file_id: Annotated[str, Field(min_length=1)]
    preset: PresetName = DEFAULT_PRESET
    base_model: str | None = None
    method: Method | None = None
    gpu_type: str | None = None
    pricing: Literal["spot", "on_demand"] = "spot"


# The single settings an estimate takes (the ones that change its steps), after the rest.
COST_SETTINGS = ("num_epochs", "batch_size", "gradient_accumulation_steps", "lora_r", "max_steps")
CostQuery = overrides_model("CostQuery", COST_SETTINGS, base=_CostQuery)
