"""The error taxonomy: every failure the product reports has a type, says whether it is
the user's to fix, and carries a message that names what is wrong and where."""
from __future__ import annotations

import enum
from dataclasses import dataclass


class ErrorType(str, enum.Enum):
    DATASET_FORMAT = "dataset_format"
    INVALID_CONFIG = "invalid_config"
    OUT_OF_MEMORY = "out_of_memory"
    GPU_PROVISIONING = "gpu_provisioning"
    TIMEOUT = "timeout"
    STORAGE = "storage"
    BASE_MODEL_ACCESS = "base_model_access"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"
    WORKER_LOST = "worker_lost"      # a reclaimed spot worker, a killed process
    GPU_FAULT = "gpu_fault"          # an unrecoverable CUDA error: the worker exits
    BUDGET_EXCEEDED = "budget_exceeded"  # the team's monthly budget was reached: checkpointed and stopped
    SPEND_CAP = "spend_cap"          # the job's own max_cost_usd: checkpointed and stopped
    INTERNAL = "internal"

    @property
    def is_user_error(self) -> bool:
        return self in _USER_ERRORS


_USER_ERRORS = {ErrorType.DATASET_FORMAT, ErrorType.INVALID_CONFIG, ErrorType.BASE_MODEL_ACCESS,
                ErrorType.BUDGET_EXCEEDED, ErrorType.SPEND_CAP}


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input, and where it is.

    ``where`` reads like a path a person can follow: ``conversation 3 (id "c-3") > pair 2
    (id "c-3-t2")``, or ``line 14, column 7``.
    """

    where: str
    message: str
    field: str | None = None

    def __str__(self) -> str:
        field = f' > field "{self.field}"' if self.field else ""
        return f"{self.where}{field}: {self.message}"

    def to_dict(self) -> dict:
        return {"where": self.where, "field": self.field, "message": self.message}


class PipelineError(Exception):
    """Base of every error the product reports to a person."""

    error_type: ErrorType = ErrorType.INTERNAL

    def __init__(self, message: str, *, fix: str | None = None):
        super().__init__(message)
        self.message = message
        self.fix = fix

    def to_dict(self) -> dict:
        return {
            "type": self.error_type.value,
            "user_error": self.error_type.is_user_error,
            "message": self.message,
            "fix": self.fix,
        }


class ProblemsError(PipelineError):
    """An input with one or more problems, all of them listed."""

    noun = "input"

    def __init__(self, problems: list[Problem], *, source: str | None = None,
                 total: int | None = None, fix: str | None = None):
        self.problems = list(problems)
        self.total = total if total is not None else len(self.problems)
        self.source = source
        where = f" in {source}" if source else ""
        plural = "s" if self.total != 1 else ""
        head = f"{self.total} problem{plural} found{where}"
        if self.total > len(self.problems):
            head += f" (first {len(self.problems)} shown)"
        super().__init__(head + ":\n" + "\n".join(f"  - {p}" for p in self.problems), fix=fix)

    def to_dict(self) -> dict:
        return {**super().to_dict(), "count": self.total,
                "problems": [p.to_dict() for p in self.problems]}


class DatasetError(ProblemsError):
    error_type = ErrorType.DATASET_FORMAT


class ConfigError(ProblemsError):
    error_type = ErrorType.INVALID_CONFIG


class StorageError(PipelineError):
    error_type = ErrorType.STORAGE


class BaseModelError(PipelineError):
    error_type = ErrorType.BASE_MODEL_ACCESS


class CheckpointMismatch(PipelineError):
    """The run directory or job prefix holds checkpoints of a different run."""

    error_type = ErrorType.INVALID_CONFIG


class Interrupted(PipelineError):
    """Training stopped on request (SIGTERM, Ctrl-C) after saving a checkpoint."""

    error_type = ErrorType.INTERRUPTED

    def __init__(self, step: int, checkpoint_key: str | None):
        self.step = step
        self.checkpoint_key = checkpoint_key
        saved = f"checkpoint saved at step {step}" if checkpoint_key else "no checkpoint could be saved"
        super().__init__(f"Training interrupted at step {step}; {saved}.",
                         fix="Run the same command again to resume from the last checkpoint.")


class Superseded(PipelineError):
    """A newer attempt of the same job is running: this one stops without writing anything."""

    error_type = ErrorType.INTERRUPTED

    def __init__(self, attempt: int, current: int):
        super().__init__(f"attempt {attempt} stopped: attempt {current} of this job is the current one",
                         fix="Nothing to do: the current attempt carries on.")


class StopRequested(PipelineError):
    """The control plane asked the attempt to checkpoint and stop for money: the month's
    budget was reached (``budget_exceeded``) or the job's spend cap (``spend_cap``)."""

    def __init__(self, error_type: ErrorType, message: str, step: int):
        self.error_type = error_type
        self.step = step
        saved = f"a checkpoint of step {step} was saved" if step else "no checkpoint had been saved yet"
        super().__init__(f"{message}; {saved}",
                         fix=(f"Continue from the checkpoint of step {step} (Retry, continuing from it)" if step
                              else "Start it again (Retry)")
                             + (" with a higher max_cost_usd" if error_type == ErrorType.SPEND_CAP
                                else " once the budget allows, or ask an admin to override it"))


class TimeLimitReached(PipelineError):
    """The job's hard time limit came near: a checkpoint was saved and training stopped."""

    error_type = ErrorType.TIMEOUT

    def __init__(self, step: int, limit_s: float):
        super().__init__(
            f"the job reached its time limit ({limit_s / 3600:.1f} h over all attempts) at step "
            f"{step}; a checkpoint of step {step} was saved",
            fix=f"Continue training from the checkpoint of step {step} in a new job (Retry > continue "
                "from a checkpoint), or reduce num_epochs or max_steps.")
