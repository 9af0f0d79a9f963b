"""``/api/rubrics``: brand-voice rubrics per client. Everyone lists them (a job picks one);
admins create and archive them."""
from __future__ import annotations

from flask import g, jsonify

from control.api.blueprint import bp
from control.api.documentation import api_doc
from control.api.requests import json_body
from control.responses import ErrorOut, RubricList, RubricOut
from control.schemas import CreateRubric
from control.services import rubrics


@bp.get("/rubrics")
@api_doc("The rubrics a job can pick: the documents' default first, then the clients'",
         responses={200: RubricList})
def list_rubrics():
    return jsonify(data=rubrics.all_rubrics())


@bp.get("/rubrics/<rubric_id>")
@api_doc("One rubric with its characteristics", responses={200: RubricOut, 404: ErrorOut})
def get_rubric(rubric_id):
    return jsonify(rubrics.get(rubric_id))


@bp.post("/rubrics")
@api_doc("Create a rubric (admins): a name, an optional client, and each characteristic's name and "
         "description", body=CreateRubric, responses={201: RubricOut, 400: ErrorOut, 403: ErrorOut, 409: ErrorOut})
def create_rubric():
    body = json_body(CreateRubric)
    row = rubrics.create(g.user, body.name, [c.model_dump() for c in body.characteristics], body.client)
    return jsonify(row.to_dict()), 201


@bp.delete("/rubrics/<rubric_id>")
@api_doc("Archive a rubric (admins): new jobs can no longer pick it; jobs that use it keep it",
         responses={200: RubricOut, 403: ErrorOut, 404: ErrorOut})
def archive_rubric(rubric_id):
    return jsonify(rubrics.archive(g.user, rubric_id).to_dict())
