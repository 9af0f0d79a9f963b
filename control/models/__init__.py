"""The control plane's tables (design.md, "Facts from the product documents")."""
from control.models.audit import AUDIT_ACTIONS, AuditEntry
from control.models.base_model import RegisteredBaseModel
from control.models.delivery import SHARE_TOKEN_BYTES, ShareLink, ValidationReport, hash_share_token
from control.models.job_template import JobTemplate
from control.models.evaluation_run import EvaluationRun, EvaluationStatus
from control.models.job_status import AttemptOutcome, JobStatus
from control.models.money import DEFAULT_ALERTS, DEFAULT_LIMIT_USD, BudgetSetting
from control.models.notification import (CHANNELS, DEFAULT_EVENTS, NOTICE_KINDS, OUTBOX_STATES, USER_EVENTS,
                                         Notice, NotificationPreference, OutboxMessage)
from control.models.review import DECISIONS, REVIEW_SUITES, DeliveryDecision, Review, Rubric
from control.models.records import METRIC_FIELDS, MetricPoint, ModelArtifact, TrainingEvent
from control.models.training_file import TrainingFile, TrainingFileStatus
from control.models.training_job import JobAttempt, TrainingJob
from control.models.types import iso, new_id, utcnow
from control.models.user import ROLES, ApiToken, ConsoleSession, PasswordLink, User, hash_token
from control.models.webhook import DELIVERY_STATES, WEBHOOK_EVENTS, WebhookDelivery, WebhookEndpoint

__all__ = ["AUDIT_ACTIONS", "AuditEntry", "JobTemplate", "PasswordLink", "BudgetSetting", "CHANNELS", "DEFAULT_ALERTS", "DEFAULT_EVENTS", "DEFAULT_LIMIT_USD",
           "DELIVERY_STATES", "NOTICE_KINDS", "Notice", "NotificationPreference", "OUTBOX_STATES",
           "OutboxMessage", "USER_EVENTS", "WEBHOOK_EVENTS", "WebhookDelivery", "WebhookEndpoint",
           "DECISIONS", "METRIC_FIELDS", "REVIEW_SUITES", "ROLES", "SHARE_TOKEN_BYTES", "DeliveryDecision", "Review", "Rubric", "ShareLink", "ValidationReport", "hash_share_token", "ApiToken", "AttemptOutcome", "ConsoleSession", "EvaluationRun", "EvaluationStatus", "JobAttempt",
           "JobStatus", "MetricPoint", "ModelArtifact", "RegisteredBaseModel", "TrainingEvent",
           "TrainingFile", "TrainingFileStatus", "TrainingJob", "User", "hash_token", "iso", "new_id",
           "utcnow"]
