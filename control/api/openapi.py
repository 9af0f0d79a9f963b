"""``/api/openapi.json``: the API described, built from the same schemas that validate requests."""
from __future__ import annotations

from flask import jsonify

from control.api.blueprint import bp
from control.schemas import CostQuery, CreateJob, EventsQuery, JobListQuery, MetricsQuery, RetryJob

ERROR = {"$ref": "#/components/schemas/Error"}
JOB = "/training/jobs/{job_id}"

# (method, path under /api, summary, body schema, query schema, success status)
ROUTES = [
    ("post", "/training-files", "Upload a dataset (multipart/form-data, field 'file'); validated before it is stored", "multipart", None, 201),
    ("get", "/training-files", "List your training files", None, None, 200),
    ("get", "/training-files/{file_id}", "A training file and its statistics", None, None, 200),
    ("delete", "/training-files/{file_id}", "Delete a training file no job uses", None, None, 204),
    ("post", "/training/jobs", "Create a training job (pending, or started with \"start\": true), with its cost estimate", CreateJob, None, 201),
    ("get", "/training/jobs", "List your jobs, paginated; filter by status, creator, date, preset, tag, text; sort", None, JobListQuery, 200),
    ("get", JOB, "A job: status, stage, progress, step of total, loss, ETA, cost", None, None, 200),
    ("delete", JOB, "Delete a job that is not running, with its stored files", None, None, 204),
    ("post", JOB + "/start", "Queue a pending job for dispatch", None, None, 202),
    ("post", JOB + "/cancel", "Cancel a job; no further cost accrues", None, None, 202),
    ("post", JOB + "/checkpoint", "Checkpoint a training job at its next step (before a planned shutdown)", None, None, 202),
    ("get", JOB + "/checkpoints", "The job's complete checkpoints, newest first", None, None, 200),
    ("post", JOB + "/retry", "A new job from a finished one, with the failure's suggested adjustment and the changes listed; from_checkpoint_step continues its training", RetryJob, None, 201),
    ("get", JOB + "/support-bundle", "Job, configuration, classified error, attempts and event log in one file", None, None, 200),
    ("get", JOB + "/metrics", "Metric history (thinned evenly to max_points; since_step for increments)", None, MetricsQuery, 200),
    ("get", JOB + "/events", "The event log, by cursor", None, EventsQuery, 200),
    ("get", JOB + "/artifacts", "Artifacts and held-out scores", None, None, 200),
    ("get", JOB + "/download/{kind}", "Download: adapters (ZIP via a signed URL, 302; ?redirect=false for JSON), metrics (?format=csv|json), validation-report, deployment-package", None, None, 200),
    ("get", "/training/downloads/{token}", "A signed download link (no bearer token)", None, None, 200),
    ("get", "/training/cost-estimate", "Estimate duration and cost for a training file and settings", None, CostQuery, 200),
    ("get", "/openapi.json", "This document", None, None, 200),
]
PUBLIC = {"/training/downloads/{token}", "/openapi.json"}


def _params(path: str, query) -> list:
    params = [{"name": p.strip("{}"), "in": "path", "required": True, "schema": {"type": "string"}}
              for p in path.split("/") if p.startswith("{")]
    if query is not None:
        schema = query.model_json_schema()
        for name, prop in schema.get("properties", {}).items():
            params.append({"name": name, "in": "query", "required": name in schema.get("required", []),
                           "schema": prop})
    return params


def document() -> dict:
    paths: dict = {}
    for method, path, summary, body, query, status in ROUTES:
        op = {"summary": summary, "parameters": _params(path, query),
              "responses": {str(status): {"description": "success"},
                            "4XX": {"description": "bad request", "content": {"application/json": {"schema": ERROR}}}}}
        if path in PUBLIC:
            op["security"] = []
        if body == "multipart":
            op["requestBody"] = {"required": True, "content": {"multipart/form-data": {"schema": {
                "type": "object", "required": ["file"],
                "properties": {"file": {"type": "string", "format": "binary"},
                               "format": {"type": "string", "enum": ["brightrun-lora-v4", "chat-jsonl"]}}}}}}
        elif body is not None:
            op["requestBody"] = {"required": True, "content": {"application/json": {
                "schema": {"$ref": f"#/components/schemas/{body.__name__}"}}}}
        paths.setdefault("/api" + path, {})[method] = op
    schemas = {"Error": {"type": "object", "properties": {"error": {"type": "object", "properties": {
        "code": {"type": "string"}, "message": {"type": "string"}, "field": {"type": ["string", "null"]}}}}}}
    for model in (CreateJob, RetryJob):
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    return {"openapi": "3.1.0",
            "info": {"title": "BrightRun LoRA training API", "version": "1"},
            "components": {"schemas": schemas, "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"}}},
            "security": [{"bearer": []}], "paths": paths}


@bp.get("/openapi.json")
def openapi():
    return jsonify(document())
