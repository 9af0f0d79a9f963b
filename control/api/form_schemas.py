"""Request shapes the routes read by hand rather than through ``control/schemas.py``: the
multipart upload, the training files' list filter and the download options. They exist for
the OpenAPI document and say exactly what those routes accept."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema

# No query parameter holds a control character (``control/error_handling.py`` refuses them).
ONE_LINE = r"^[^\u0000-\u001f\u007f-\u009f]*$"
# A training file's purpose: control/models/training_file.py PURPOSES.
Purpose = Literal["fine-tune", "evaluation"]


class UploadForm(BaseModel):
    """``multipart/form-data``: the file in field ``file``; other fields are ignored."""

    file: bytes = Field(description="the dataset: brightrun-lora-v4 (.json) or chat JSONL (.jsonl); "
                        "or, for purpose evaluation, prompts JSONL (one prompt a line)")
    purpose: Literal["fine-tune", "evaluation", ""] | SkipJsonSchema[None] = Field(
        None, description="fine-tune (absent or empty: a dataset to train on) or evaluation (the "
        "prompts to evaluate a job on; never trained on)")
    format: Literal["brightrun-lora-v4", "chat-jsonl", "prompts-jsonl", ""] | SkipJsonSchema[None] = Field(
        None, description="the format; absent or empty: detected from the file (fine-tune), or "
        "prompts-jsonl (evaluation, the only format of its purpose)")


class FileListQuery(BaseModel):
    """``GET /api/training-files``: an optional filter."""

    model_config = ConfigDict(extra="forbid")
    purpose: Purpose | None = Field(None, description="only the files of this purpose")


class UploadQuery(BaseModel):
    wait: Literal["true", "false", "1", "0"] = Field(
        "false", description="true: wait (bounded) for the validation and answer 201 or 422")


class AdapterDownloadQuery(BaseModel):
    redirect: str = Field("true", pattern=ONE_LINE,
                          description="0, false or no: the signed link as JSON instead of a 302 to it")


class MetricsDownloadQuery(BaseModel):
    format: Literal["csv", "json"] = "csv"


class ReportDownloadQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int | None = Field(None, ge=1, le=100_000, description="an older version; unset: the newest")
    format: Literal["pdf", "json"] = Field("pdf", description="json: the evaluation summary the report is built on")
