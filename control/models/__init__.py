"""The control plane's tables (design.md, "Facts from the product documents")."""
from control.models.base_model import RegisteredBaseModel
from control.models.evaluation_run import EvaluationRun, EvaluationStatus
from control.models.job_status import AttemptOutcome, JobStatus
from control.models.records import METRIC_FIELDS, MetricPoint, ModelArtifact, TrainingEvent
from control.models.training_file import TrainingFile, TrainingFileStatus
from control.models.training_job import JobAttempt, TrainingJob
from control.models.types import iso, new_id, utcnow
from control.models.user import ROLES, ApiToken, ConsoleSession, User, hash_token

__all__ = ["METRIC_FIELDS", "ROLES", "ApiToken", "AttemptOutcome", "ConsoleSession", "EvaluationRun", "EvaluationStatus", "JobAttempt",
           "JobStatus", "MetricPoint", "ModelArtifact", "RegisteredBaseModel", "TrainingEvent",
           "TrainingFile", "TrainingFileStatus", "TrainingJob", "User", "hash_token", "iso", "new_id",
           "utcnow"]
