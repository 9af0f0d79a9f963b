"""The job input contract (control plane -> handler), defined once.

Never secrets: workers read storage credentials and model-hub tokens from their own
environment. Unknown fields are refused, so nothing else can ride along.
"""
from __future__ import annotations

import hashlib
import json
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.errors import ConfigError, Problem
from shared.presets import DEFAULT_PRESET, PRESETS
from shared.validation import config_error

Method = Literal["qlora", "lora"]
PresetName = Literal["conservative", "balanced", "aggressive"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Hyperparameters(_Strict):
    """Training settings, named as in the product documents; a preset fills every one."""

    num_epochs: Annotated[int, Field(ge=1, le=100, description="passes over the training split")]
    batch_size: Annotated[int, Field(ge=1, le=512, description="training pairs (targets) per micro-batch")]
    gradient_accumulation_steps: Annotated[int, Field(ge=1, le=1024)]
    learning_rate: Annotated[float, Field(gt=0, le=1)]
    lora_r: Annotated[int, Field(ge=1, le=1024)]
    lora_alpha: Annotated[float, Field(gt=0, le=4096)]
    lora_dropout: Annotated[float, Field(ge=0, lt=1)]
    target_modules: Annotated[list[str], Field(min_length=1)]
    warmup_ratio: Annotated[float, Field(ge=0, lt=1)]
    max_seq_length: Annotated[int, Field(ge=32, le=131072)]
    max_steps: Annotated[int | None, Field(ge=1, description="stop after this many optimizer steps")] = None
    lr_scheduler: Literal["cosine", "linear", "constant"] = "cosine"
    weight_decay: Annotated[float, Field(ge=0, le=1)] = 0.0
    max_grad_norm: Annotated[float, Field(gt=0)] = 1.0

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
    every_steps: Annotated[int, Field(ge=1)] = 100
    prefix: Annotated[str, Field(description="storage prefix for checkpoints and outputs; "
                                 "keyed by the training job, not the RunPod job")]
    init_from: Annotated[str | None, Field(description=(
        "a checkpoint key of another job (…/checkpoints/step-N) whose adapter weights and "
        "optimizer state this job starts from, when it has no checkpoint of its own"))] = None


class ValidationSettings(_Strict):
    fraction: Annotated[float, Field(ge=0, lt=1)] = 0.2
    seed: int = 42


class DataSettings(_Strict):
    fold: bool = True
    min_quality_score: Annotated[int | None, Field(ge=1, le=5)] = None


class JobInput(_Strict):
    job_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")]
    attempt: Annotated[int, Field(ge=1)] = 1
    dataset: DatasetRef
    base_model: Annotated[str, Field(min_length=1)] = "embedded"
    method: Method = "lora"
    preset: PresetName = DEFAULT_PRESET
    hyperparameters: Hyperparameters
    checkpoint: CheckpointSettings
    validation: ValidationSettings = ValidationSettings()
    data: DataSettings = DataSettings()
    seed: int = 42
    time_limit_seconds: Annotated[int | None, Field(ge=1, description=(
        "this attempt's share of the job's hard time limit: the handler checkpoints and stops "
        "before it runs out"))] = None

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
