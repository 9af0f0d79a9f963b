"""The control plane's tables (design.md, "Facts from the product documents")."""
from control.models.records import METRIC_FIELDS, MetricPoint, ModelArtifact, TrainingEvent
from control.models.training_file import TrainingFile
from control.models.training_job import (ACTIVE_STATUSES, FINAL_STATUSES, STATUSES, JobAttempt,
                                         TrainingJob)
from control.models.types import iso, utcnow
from control.models.user import ROLES, ApiToken, User, hash_token

__all__ = ["ACTIVE_STATUSES", "FINAL_STATUSES", "METRIC_FIELDS", "ROLES", "STATUSES", "ApiToken",
           "JobAttempt", "MetricPoint", "ModelArtifact", "TrainingEvent", "TrainingFile",
           "TrainingJob", "User", "hash_token", "iso", "utcnow"]
