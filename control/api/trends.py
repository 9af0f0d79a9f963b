"""``/api/training/jobs/trends``: one dataset's perplexity gain and cost per job over time."""
from __future__ import annotations

from flask import g, jsonify

from control.api.blueprint import bp
from control.api.documentation import api_doc
from control.api.requests import query_args
from control.responses import ErrorOut
from control.responses.history import TrendsOut
from control.schemas.history import TrendsQuery
from control.services import trends


@bp.get("/training/jobs/trends")
@api_doc("A dataset's trends: perplexity gain and cost of each completed job, oldest first, with the best "
         "and the medians (your jobs; an admin: everyone's)", query=TrendsQuery,
         responses={200: TrendsOut, 404: ErrorOut})
def dataset_trends():
    query = query_args(TrendsQuery)
    return jsonify(trends.dataset_trends(g.user, query.training_file_id, query.limit))
