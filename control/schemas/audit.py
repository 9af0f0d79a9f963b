"""The audit trail's query (``GET /api/audit``; the console's audit page reads the same
filters with it)."""
from __future__ import annotations

from typing import Annotated

from pydantic import ConfigDict, Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from control.models import AUDIT_ACTIONS
from control.schemas import SAFE_INT, IsoDatetime, Text, _Strict

MAX_AUDIT_PAGE = 500
#: The families of actions (``job.``, ``user.``, ...), in the order of ``AUDIT_ACTIONS``.
ACTION_FAMILIES = tuple(dict.fromkeys(a.split(".")[0] + "." for a in AUDIT_ACTIONS))


def _action(value: str | None) -> str | None:
    """A whole action name, or a family written ``job.`` (or ``job``)."""
    if value is None:
        return None
    value = value.strip()
    if value in AUDIT_ACTIONS or value in ACTION_FAMILIES:
        return value
    if value + "." in ACTION_FAMILIES:
        return value + "."
    raise PydanticCustomError("audit_action", "unknown action {value}: expected a family ({families}) or one of "
                              "{actions}", {"value": repr(value), "families": ", ".join(ACTION_FAMILIES),
                                            "actions": ", ".join(AUDIT_ACTIONS)})


class AuditQuery(_Strict):
    """Filters of the audit trail, newest first; ``before`` pages on (the previous answer's
    ``next_before``)."""

    model_config = ConfigDict(extra="forbid")   # query strings are text: coerce
    since: Annotated[IsoDatetime | None, Field(description="entries at or after this time (ISO 8601)")] = None
    until: Annotated[IsoDatetime | None, Field(description="entries before this time (ISO 8601)")] = None
    actor: Annotated[Text(320, min_length=1) | None, Field(description=(
        "who: an email, a user id, or system (entries no person made)"))] = None
    action: Annotated[Text(48, min_length=1) | None, Field(description=(
        "a whole action (job.started) or a family (job., user., ...)"))] = None
    job_id: Text(64, min_length=1) | None = None
    limit: Annotated[int, Field(ge=1, le=MAX_AUDIT_PAGE, description=(
        f"entries in this answer (at most {MAX_AUDIT_PAGE})"))] = 100
    before: Annotated[int | None, Field(ge=1, le=SAFE_INT, description=(
        "only entries older than this entry id (the previous answer's next_before)"))] = None

    @field_validator("action")
    @classmethod
    def _known_action(cls, value: str | None) -> str | None:
        return _action(value)

    @field_validator("until")
    @classmethod
    def _after_since(cls, value, info: ValidationInfo):
        since = info.data.get("since")
        if value is not None and since is not None and value <= since:
            raise PydanticCustomError("range", "must be after since ({since})", {"since": since.isoformat()})
        return value
