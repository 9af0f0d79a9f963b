"""The control plane's tables (design.md, "Facts from the product documents")."""
from control.models.job_status import AttemptOutcome, JobStatus
from control.models.records import METRIC_FIELDS, MetricPoint, ModelArtifact, TrainingEvent
from control.models.training_file import TrainingFile
from control.models.training_job import JobAttempt, TrainingJob
from control.models.types import iso, new_id, utcnow
from control.models.user import ROLES, ApiToken, User, hash_token

__all__ = ["METRIC_FIELDS", "ROLES", "ApiToken", "AttemptOutcome", "JobAttempt", "JobStatus",
           "MetricPoint", "ModelArtifact", "TrainingEvent", "TrainingFile", "TrainingJob", "User",
           "hash_token", "iso", "new_id", "utcnow"]
