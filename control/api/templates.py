"""``/api/training/templates``: named job configurations the whole team sees. Anyone saves
one (from a job, ``POST /api/training/jobs/<id>/template``, or from an explicit
configuration) and starts jobs from it (``template_id`` on ``POST /api/training/jobs``); its
creator or an admin renames or deletes it. The list carries each template's use counts and
the share of its jobs that met the perplexity target, and the same share per preset."""
from __future__ import annotations

from flask import g, jsonify

from control.api.blueprint import bp
from control.api.documentation import api_doc
from control.api.requests import json_body, query_args
from control.responses import ErrorOut, TemplateList, TemplateOut
from control.schemas.templates import CreateTemplate, EditTemplate, SaveJobAsTemplate, TemplateListQuery
from control.services import templates
from control.services.access import visible_job


@bp.get("/training/templates")
@api_doc("The team's templates by name (every user sees every one), each with how many jobs started "
         "from it and the share of those that met the perplexity target; presets: the same share "
         "for each preset over all jobs", query=TemplateListQuery, responses={200: TemplateList})
def list_templates():
    query = query_args(TemplateListQuery)
    rows, total = templates.listing(query.page, query.per_page)
    return jsonify(data=rows, page=query.page, per_page=query.per_page, total=total,
                   target_pct=templates.target_pct(), presets=templates.preset_shares())


@bp.post("/training/templates")
@api_doc("Save a named template of an explicit configuration (the settings of a job request), "
         "checked as a job's creation checks them", body=CreateTemplate,
         responses={201: TemplateOut, 404: ErrorOut, 409: ErrorOut})
def create_template():
    body = json_body(CreateTemplate)
    row = templates.create_from(g.user, body.name, body.description, body.configuration)
    return jsonify(templates.view(row)), 201


@bp.post("/training/jobs/<job_id>/template")
@api_doc("Save the settings a job ran with as a named template (preset, overrides, GPU and tier, "
         "base model, method, evaluation, rubric, spend cap)", body=SaveJobAsTemplate,
         responses={201: TemplateOut, 404: ErrorOut, 409: ErrorOut})
def save_job_as_template(job_id):
    body = json_body(SaveJobAsTemplate)
    row = templates.save_job(g.user, visible_job(g.user, job_id), body.name, body.description)
    return jsonify(templates.view(row)), 201


@bp.get("/training/templates/<template_id>")
@api_doc("One template, with its use counts", responses={200: TemplateOut, 404: ErrorOut})
def get_template(template_id):
    return jsonify(templates.view(templates.get(template_id)))


@bp.patch("/training/templates/<template_id>")
@api_doc("Rename a template or change its description (its creator or an admin)", body=EditTemplate,
         responses={200: TemplateOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut})
def edit_template(template_id):
    return jsonify(templates.view(templates.edit(g.user, template_id, json_body(EditTemplate))))


@bp.delete("/training/templates/<template_id>")
@api_doc("Delete a template (its creator or an admin); jobs started from it keep their settings",
         responses={204: None, 403: ErrorOut, 404: ErrorOut})
def delete_template(template_id):
    templates.delete(g.user, template_id)
    return "", 204
