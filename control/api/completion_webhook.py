"""``POST /api/training/webhook/<token>``: RunPod's call when a job it ran ends.

RunPod cannot send a bearer token, so the path's token is the credential: one per attempt,
handed to ``/run`` by dispatch (``services/attempt_tokens.py``). The route is public to the
bearer check (``PUBLIC_ENDPOINTS``) but counted by the API's rate limit, per address. A token
that is not one, or a body naming another RunPod job than the token's attempt, is a 404,
the same 404, so the route tells a guesser nothing. A valid call settles the attempt at once
(``services/completion_webhook.py``); calling again, or before the end, is harmless.
"""
from __future__ import annotations

from flask import jsonify

from control.api.blueprint import bp
from control.api.documentation import api_doc
from control.api.errors import ApiError
from control.api.requests import json_body
from control.responses import ErrorOut
from control.responses.webhooks import CompletionAnswer
from control.schemas.webhooks import CompletionCallback
from control.services import attempt_tokens, completion_webhook



@bp.post("/training/webhook/<token>", endpoint="completion_webhook")
@api_doc("RunPod's completion webhook: the attempt's token in the path is the credential (no bearer "
         "token); the body is RunPod's status of the job. Settles the attempt at once; repeated or early "
         "calls are harmless", public=True, body=CompletionCallback,
         responses={200: CompletionAnswer, 404: ErrorOut})
def completion_webhook_call(token):
    attempt = attempt_tokens.verify(token)
    if attempt is None:
        raise _no_such()
    body = json_body(CompletionCallback)
    if not attempt.runpod_job_id or body.id != attempt.runpod_job_id:
        raise _no_such()
    return jsonify(outcome=completion_webhook.settle(attempt.id, body.model_dump(mode="json")))


def _no_such() -> ApiError:
    return ApiError(404, "not_found", "no such webhook")
