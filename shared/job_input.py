"""The job input contract (control plane -> handler), defined once.

Never secrets: workers read storage credentials and model-hub tokens from their own
environment. Unknown fields are refused, so nothing else can ride along.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from types import UnionType
from typing import Annotated, Literal, Optional, Union, get_args, get_origin

from annotated_types import Ge, Gt, Le, Lt
from pydantic import (BaseModel, ConfigDict, Field, ValidationError, create_model, field_validator,
                      model_validator)
from pydantic_core import PydanticCustomError

from shared.errors import ConfigError, Problem
from shared.presets import DEFAULT_PRESET, PRESETS
from shared.validation import config_error

Method = Literal["qlora", "lora"]
PresetName = Literal["conservative", "balanced", "aggressive"]
MAX_STEPS = 1_000_000          # optimizer steps: far beyond any fine-tune, far below overflow
MAX_SEED = 2**32 - 1           # what every random generator the recipe seeds accepts


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Hyperparameters(_Strict):
    """Training settings, named as in the product documents; a preset fills every one."""

    num_epochs: Annotated[int, Field(ge=1, le=100, description="passes over the training split")]
    batch_size: Annotated[int, Field(ge=1, le=512, description="training pairs (targets) per micro-batch")]
    gradient_accumulation_steps: Annotated[int, Field(ge=1, le=1024, description=(
        "micro-batches per optimizer step"))]
    learning_rate: Annotated[float, Field(gt=0, le=1, description="the optimizer's peak learning rate")]
    lora_r: Annotated[int, Field(ge=1, le=1024, description="LoRA rank: the adapter's capacity")]
    lora_alpha: Annotated[float, Field(gt=0, le=4096, description=(
        "LoRA scaling: updates are scaled by lora_alpha / lora_r"))]
    lora_dropout: Annotated[float, Field(ge=0, lt=1, description="dropout on the LoRA layers' input")]
    target_modules: Annotated[list[str], Field(min_length=1)]
    warmup_ratio: Annotated[float, Field(ge=0, lt=1, description=(
        "share of the optimizer steps over which the learning rate warms up"))]
    max_seq_length: Annotated[int, Field(ge=32, le=131072, description=(
        "longest training sequence in tokens (pairs ending beyond it are skipped)"))]
    max_steps: Annotated[int | None, Field(ge=1, le=MAX_STEPS, description=(
        "stop after this many optimizer steps"))] = None
    lr_scheduler: Literal["cosine", "linear", "constant"] = "cosine"
    weight_decay: Annotated[float, Field(ge=0, le=1)] = 0.0
    max_grad_norm: Annotated[float, Field(gt=0, le=1000)] = 1.0

    @property
    def targets_per_step(self) -> int:
        """Training pairs per optimizer step, whatever folding does to sequences."""
        return self.batch_size * self.gradient_accumulation_steps

    @classmethod
    def for_preset(cls, preset: str = DEFAULT_PRESET, overrides: dict | None = None) -> "Hyperparameters":
        """A preset's settings with single fields overridden; unknown names are refused."""
        if preset not in PRESETS:
            raise ConfigError([Problem("preset", f"unknown preset {preset!r}: expected one of "
                                       + ", ".join(PRESETS))])
        values = PRESETS[preset].hyperparameters()
        overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
        unknown = sorted(set(overrides) - set(cls.model_fields))
        if unknown:
            raise ConfigError([Problem("hyperparameters", "unknown setting; expected one of "
                                       + ", ".join(cls.model_fields), k) for k in unknown])
        values.update(overrides)
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            raise config_error(exc, "hyperparameters") from None


class DatasetRef(_Strict):
    key: Annotated[str, Field(min_length=1, description="object-storage key of the dataset file")]
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    format: Literal["brightrun-lora-v4", "chat-jsonl"] | None = None


class CheckpointSettings(_Strict):
    every_steps: Annotated[int, Field(ge=1, le=MAX_STEPS, description=(
        "save a checkpoint every N optimizer steps"))] = 100
    prefix: Annotated[str, Field(description="storage prefix for checkpoints and outputs; "
                                 "keyed by the training job, not the RunPod job")]
    init_from: Annotated[str | None, Field(description=(
        "a checkpoint key of another job (…/checkpoints/step-N) whose adapter weights and "
        "optimizer state this job starts from, when it has no checkpoint of its own"))] = None


class ValidationSettings(_Strict):
    fraction: Annotated[float, Field(ge=0, lt=1)] = 0.2
    seed: Annotated[int, Field(ge=0, le=MAX_SEED)] = 42


class DataSettings(_Strict):
    fold: bool = True
    min_quality_score: Annotated[int | None, Field(ge=1, le=5)] = None


class PromptsRef(_Strict):
    """The customer's own prompts (a JSONL of ``shared.dataset.prompts``) in object storage."""
    key: Annotated[str, Field(min_length=1)]
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class EvaluationSettings(_Strict):
    """What the evaluating stage runs: the suites' size, the decoding, the validation-loss
    curve during training. None of it changes the trained adapter (not in the fingerprint)."""

    size: Annotated[Literal["quick", "full", "perplexity"] | None, Field(description=(
        "quick: a stratified sample of each suite (minutes on a CPU); full: every scenario, "
        "question and held-out turn; perplexity: only the held-out perplexity and validation "
        "loss (no answers generated: a quick look while tuning); unset: full on a GPU, quick on a CPU"))] = None
    max_new_tokens: Annotated[int, Field(ge=1, le=2048, description=(
        "the longest answer each model may generate"))] = 256
    batch_size: Annotated[int, Field(ge=1, le=256, description="prompts generated at once")] = 8
    every_steps: Annotated[int | None, Field(ge=1, le=MAX_STEPS, description=(
        "measure the validation loss every N optimizer steps (default: ten points over the run)"))] = None
    validation_sample: Annotated[int, Field(ge=1, le=4096, description=(
        "held-out sequences the validation loss is measured on during training"))] = 64
    prompts: Annotated[PromptsRef | None, Field(description="the customer's own prompts")] = None
    run_id: Annotated[str | None, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$", description=(
        "a re-evaluation's id: its results go under the job's evaluations/<run_id>/"))] = None


class JobInput(_Strict):
    job_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")]
    kind: Annotated[Literal["train", "evaluate"], Field(description=(
        "train: train, then evaluate; evaluate: evaluate the finished job's adapter again"))] = "train"
    attempt: Annotated[int, Field(ge=1, le=1000)] = 1
    dataset: DatasetRef
    base_model: Annotated[str, Field(min_length=1)] = "embedded"
    method: Method = "lora"
    preset: PresetName = DEFAULT_PRESET
    hyperparameters: Hyperparameters
    checkpoint: CheckpointSettings
    validation: ValidationSettings = ValidationSettings()
    data: DataSettings = DataSettings()
    seed: Annotated[int, Field(ge=0, le=MAX_SEED)] = 42
    evaluation: EvaluationSettings = EvaluationSettings()
    time_limit_seconds: Annotated[int | None, Field(ge=1, le=2**31 - 1, description=(
        "this attempt's share of the job's hard time limit: the handler checkpoints and stops "
        "before it runs out"))] = None

    @model_validator(mode="after")
    def _a_re_evaluation_names_its_run(self):
        if self.kind == "evaluate" and not self.evaluation.run_id:
            raise ValueError("an evaluate job needs evaluation.run_id")
        return self

    @classmethod
    def parse(cls, raw) -> "JobInput":
        """Validate a decoded job input (a dict), raising :class:`ConfigError`."""
        try:
            return cls.model_validate_json(json.dumps(raw))
        except ValidationError as exc:
            raise config_error(exc, "job input") from None
        except (TypeError, ValueError) as exc:
            raise ConfigError([Problem("job input", f"not JSON-serialisable: {exc}")]) from None

    def fingerprint(self) -> str:
        """What determines the trained result; a checkpoint resumes only a run that matches."""
        data = self.model_dump(mode="json", include={"dataset", "base_model", "method",
                                                     "hyperparameters", "validation", "data", "seed"})
        data["dataset"].pop("key", None)
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]

    def evaluation_fingerprint(self) -> str:
        """What determines the evaluation's results: the trained run and the evaluation's
        settings. A resumed evaluation reuses only the finished parts that match."""
        data = {"run": self.fingerprint(), "kind": self.kind,
                "evaluation": self.evaluation.model_dump(mode="json")}
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]

    def differences(self, other: "JobInput") -> list[str]:
        """Human-readable differences in what determines the result."""
        a = self.model_dump(mode="json")
        b = other.model_dump(mode="json")
        out = []
        for section in ("base_model", "method", "seed", "dataset", "hyperparameters",
                        "validation", "data"):
            x, y = a[section], b[section]
            if isinstance(x, dict):
                for k in sorted(set(x) | set(y)):
                    if k != "key" and x.get(k) != y.get(k):
                        out.append(f"{section}.{k}: {x.get(k)!r} -> {y.get(k)!r}")
            elif x != y:
                out.append(f"{section}: {x!r} -> {y!r}")
        return out


# ------------------------------------------------------------------ single settings
# What a job request, the console's form and ``pipeline train`` may set one by one over the
# preset's: the numbers a preset fills, the step limit, and the checkpoint interval (the job
# input's ``checkpoint.every_steps``). Every surface derives its fields from this list and
# their types, bounds and descriptions from the job input's own fields, below.
OVERRIDABLE: tuple[str, ...] = (
    "num_epochs", "batch_size", "gradient_accumulation_steps", "learning_rate", "lora_r",
    "lora_alpha", "lora_dropout", "warmup_ratio", "max_seq_length", "max_steps",
    "checkpoint_every_steps")
# The one bound a request tightens: the contract lets the checkpoint interval reach the step
# limit (a benchmark runs without checkpoints); a request's job checkpoints at least this often.
REQUEST_BOUNDS: dict[str, tuple] = {"checkpoint_every_steps": (Le(100_000),)}
_BOUND_NAMES = {Gt: "gt", Ge: "ge", Lt: "lt", Le: "le"}


@dataclass(frozen=True)
class Setting:
    """One overridable setting: its number type, bounds and description, and the job input's
    default where a preset does not fill it."""

    name: str
    type: type                     # int or float
    constraints: tuple             # annotated_types bounds (Ge, Gt, Le, Lt), as pydantic reads them
    description: str | None
    default: object = None

    @property
    def bounds(self) -> dict[str, float]:
        """``{"ge": 1, "le": 100}``: the constraints by their pydantic names."""
        names = ((_BOUND_NAMES.get(type(c)), c) for c in self.constraints)
        return {name: getattr(c, name) for name, c in names if name}

    @property
    def annotation(self):
        """The type with its bounds, for a pydantic field."""
        return Annotated[(self.type, *self.constraints)] if self.constraints else self.type


def _number_type(annotation) -> type:
    args = [a for a in get_args(annotation) if a is not type(None)] if get_origin(annotation) in (
        Union, UnionType) else [annotation]
    if args not in ([int], [float]):
        raise TypeError(f"not a single number setting: {annotation!r}")
    return args[0]


def job_setting(name: str) -> Setting:
    """An overridable setting as the job input defines it (a ``Hyperparameters`` field, or
    ``CheckpointSettings.every_steps`` for ``checkpoint_every_steps``)."""
    if name not in OVERRIDABLE:
        raise KeyError(f"not an overridable setting: {name!r}")
    info = (CheckpointSettings.model_fields["every_steps"] if name == "checkpoint_every_steps"
            else Hyperparameters.model_fields[name])
    default = None if info.is_required() else info.default
    return Setting(name, _number_type(info.annotation), tuple(info.metadata), info.description, default)


def request_setting(name: str) -> Setting:
    """An overridable setting as a request may set it: the job input's, with the bounds of
    :data:`REQUEST_BOUNDS` in place of the job input's of the same kind."""
    s = job_setting(name)
    tighter = REQUEST_BOUNDS.get(name, ())
    kept = tuple(c for c in s.constraints if type(c) not in {type(t) for t in tighter})
    return replace(s, constraints=kept + tighter)


class _Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


def _float_from_int(cls, v):
    return float(v) if isinstance(v, int) and not isinstance(v, bool) else v


def whole_number(v):
    """A JSON number with no fractional part as the integer it is (JSON Schema's ``integer``
    counts ``90.0``); a fraction is refused by name; anything else (booleans too) is left to
    the strict integer check.

    >>> whole_number(90.0), whole_number(True), whole_number("7")
    (90, True, '7')
    >>> whole_number(90.5)
    Traceback (most recent call last):
    pydantic_core._pydantic_core.PydanticCustomError: expected a whole number, got 90.5
    """
    if isinstance(v, float):
        if v.is_integer():
            return int(v)
        raise PydanticCustomError("int_from_float", "expected a whole number, got {value}", {"value": v})
    return v


def _ints_from_whole_floats(cls, v):
    return whole_number(v)


def overrides_model(model_name: str, names: tuple[str, ...] = OVERRIDABLE, *,
                    base: type[BaseModel] | None = None, doc: str | None = None) -> type[BaseModel]:
    """An all-optional model of single settings (None: keep the preset's), each with the
    bounds and description of :func:`request_setting`; strict and closed unless ``base``
    says otherwise; a whole number is accepted for a float setting (as that float), and a
    float with no fractional part for an integer setting (as that integer: ``90.0`` is 90).

    >>> M = overrides_model("M", ("num_epochs", "learning_rate"))
    >>> M(learning_rate=1), list(M.model_fields)
    (M(num_epochs=None, learning_rate=1.0), ['num_epochs', 'learning_rate'])
    >>> M.model_json_schema()["properties"]["num_epochs"]["anyOf"][0]
    {'maximum': 100, 'minimum': 1, 'type': 'integer'}
    >>> M.model_validate_json('{"num_epochs": 3.0}').num_epochs
    3
    """
    settings = [request_setting(n) for n in names]
    fields = {s.name: (Optional[s.annotation], Field(None, description=s.description))
              for s in settings}
    floats = [s.name for s in settings if s.type is float]
    ints = [s.name for s in settings if s.type is int]
    validators = {}
    if floats:
        validators["_ints_are_numbers"] = field_validator(*floats, mode="before")(_float_from_int)
    if ints:
        validators["_whole_floats_are_ints"] = field_validator(*ints, mode="before")(_ints_from_whole_floats)
    return create_model(model_name, __base__=base or _Settings, __doc__=doc,
                        __validators__=validators or None, **fields)
