"""Request schemas of job templates (``/api/training/templates``) and of a job's edit after
creation (``PATCH /api/training/jobs/<id>``).

Both are made of ``CreateJob``'s own fields, so a template holds exactly the settings a job
request may give, with the same bounds, and an edit takes the name, description, notes and
tags a creation takes, bounded alike.
"""
from __future__ import annotations

from typing import Annotated, get_args

from pydantic import ConfigDict, Field, create_model

from control.schemas import CreateJob, Text, _Strict

#: What a template holds: a job request's settings, without its dataset, name or notes.
CONFIGURATION_FIELDS = ("preset", "hyperparameters", "base_model", "method", "gpu", "evaluation",
                        "rubric_id", "max_cost_usd")
#: What ``PATCH /api/training/jobs/<id>`` may change; any other field is refused, naming it.
EDITABLE_FIELDS = ("name", "description", "notes", "tags")


def _job_field(name: str, *, not_null: bool = False, description: str | None = None):
    """``CreateJob``'s field ``name`` (its type, bounds and validators), optionally without
    its null (a name that cannot be cleared) or with a description."""
    field = CreateJob.model_fields[name]
    annotation = field.rebuild_annotation()          # with its bounds
    if not_null:
        annotation = next(a for a in get_args(annotation) if a is not type(None))
    return (annotation, Field(field.default, description=description or field.description))


TemplateConfiguration = create_model(
    "TemplateConfiguration", __base__=_Strict,
    __doc__="A job request's settings, as ``POST /api/training/jobs`` takes them: a job started "
            "from the template gets each one it does not give itself.",
    **{name: _job_field(name) for name in CONFIGURATION_FIELDS})

TemplateName = Annotated[Text(200, min_length=1), Field(description="unique across the team")]
TemplateDescription = Annotated[Text(5000, multiline=True) | None, Field(
    description="what it is for, when it worked")]


class CreateTemplate(_Strict):
    """A template from an explicit configuration (to save a job's, ``POST
    /api/training/jobs/<id>/template``)."""

    name: TemplateName
    description: TemplateDescription = None
    configuration: TemplateConfiguration


class SaveJobAsTemplate(_Strict):
    """A template of the settings a job ran with."""

    name: TemplateName
    description: TemplateDescription = None


class EditTemplate(_Strict):
    """A new name or description for a template (creator or admin); its settings stay."""

    name: Annotated[Text(200, min_length=1), Field(description="unique across the team")] = None
    description: TemplateDescription = None


class TemplateListQuery(_Strict):
    model_config = ConfigDict(extra="forbid")   # query strings are text: coerce
    page: Annotated[int, Field(ge=1, le=10_000)] = 1
    per_page: Annotated[int, Field(ge=1, le=200)] = 50


EditJob = create_model(
    "EditJob", __base__=_Strict,
    __doc__="A job's name, description, notes and tags, changed after creation; the fields "
            "given change, the others stay. A null description or notes clears it.",
    name=_job_field("name", not_null=True, description="a new name (it cannot be cleared)"),
    description=_job_field("description"),
    notes=_job_field("notes"),
    tags=_job_field("tags", description="the new tags, replacing the old (at most 20, each 1-50 characters)"))
