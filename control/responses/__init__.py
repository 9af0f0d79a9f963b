"""The response schemas: one pydantic model per body the JSON API answers with, 2xx and errors.

They describe what the routes return (the models' ``to_dict()`` and the routes' ``jsonify``);
the OpenAPI document (``control/api/openapi.py``) is built from them and from the request
schemas (``control/schemas.py``), and the fuzz test (``tests/test_api_fuzz.py``) checks every
answer against them. Bodies are closed (``additionalProperties: false``) so a field added to a
route and not here fails that test; only open-ended dicts (a job's configuration, an
evaluation, a dataset's statistics) allow any keys.
"""
from control.responses.accounts import BaseModelList, BaseModelOut, TokenCreated, TokenList, TokenOut
from control.responses.audit import AuditEntryOut, AuditPage
from control.responses.common import ErrorBody, ErrorOut
from control.responses.comparison import Comparison
from control.responses.delivery import (DecisionOut, GateOut, ReportVersions, ReviewItemPage, ReviewSaved,
                                        ReviewSummary, RubricList, RubricOut, ShareLinkCreated, ShareLinkList,
                                        ShareLinkOut)
from control.responses.evaluations import EvaluationOut, EvaluationRunOut, SamplesPage
from control.responses.files import TrainingFileList, TrainingFileOut
from control.responses.jobs import (AttemptOut, CostCalibrationOut, CostEstimateOut, JobDetail, JobListPage, JobOut,
                                    RetryResult)
from control.responses.records import (AdapterLink, ArtifactsOut, CheckpointList, EventPage,
                                       MetricPoint, MetricsOut, SupportBundle)
from control.responses.templates import PresetShare, TemplateList, TemplateOut
from control.responses.users import PasswordLinkCreated, UserList, UserOut

__all__ = ["Comparison", "CostCalibrationOut", "DecisionOut", "GateOut", "ReportVersions", "ReviewItemPage", "ReviewSaved", "ReviewSummary",
           "RubricList", "RubricOut", "ShareLinkCreated", "ShareLinkList", "ShareLinkOut", "AdapterLink", "ArtifactsOut", "AttemptOut", "BaseModelList", "BaseModelOut",
           "CheckpointList", "CostEstimateOut", "ErrorBody", "ErrorOut", "EvaluationOut", "EvaluationRunOut",
           "EventPage", "SamplesPage", "JobDetail",
           "JobListPage", "JobOut", "MetricPoint", "MetricsOut", "RetryResult", "SupportBundle",
           "TokenCreated", "TokenList", "TokenOut", "TrainingFileList", "TrainingFileOut",
           "AuditEntryOut", "AuditPage", "PasswordLinkCreated", "UserList", "UserOut",
           "PresetShare", "TemplateList", "TemplateOut"]
