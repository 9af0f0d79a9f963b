"""``/api/openapi.json``: the API described, generated from the routes and the pydantic models.

Every rule of Flask's ``url_map`` under ``/api`` is an operation; its path parameters come
from the rule's converters; its summary, request schema and response schemas from the view's
``@api_doc`` (``control/api/documentation.py``); the schemas themselves from pydantic's own
JSON Schema (``model_json_schema``) of the models that validate requests
(``control/schemas.py``) and shape responses (``control/responses/``). There is no route
table to keep in step by hand.

Why a thin generator and not flask-openapi3 or spectree: both would take over the routing
(their own blueprint and decorators) and the reading of requests, where this project keeps
its own strict parsing (``control/api/requests.py``: duplicate keys, media types, size
limits, one error shape). Pydantic already emits JSON Schema (2020-12, which OpenAPI 3.1
uses as is), so one model is both the validator and the document, and the generator is
about two hundred lines.
"""
from __future__ import annotations

import re
from typing import Any

from flask import current_app, jsonify
from pydantic import BaseModel, TypeAdapter
from werkzeug.routing import FloatConverter, IntegerConverter, PathConverter, UUIDConverter

from control.api.blueprint import bp
from control.api.documentation import Media, Operation, Reply, api_doc, operation_of
from control.responses import ErrorOut

PREFIX = "/api"
REF = "#/components/schemas/{model}"
JSON = "application/json"
# Errors any operation may answer, added by the rules in ``documentation.py``'s docstring.
ERRORS = {400: "the request is invalid: the error names the field or parameter",
          401: "no valid bearer token", 404: "no such resource (or not yours)",
          413: "the body is over the limit (the error gives it in bytes)",
          415: "the body is not of an accepted media type",
          429: "over a quota or the request rate: Retry-After says when to try again"}


# Pydantic leaves a bound under its own name where a validator runs before it
# (``Annotated[int, BeforeValidator(...), Field(ge=1)]``); JSON Schema's names are these.
_BOUNDS = {"ge": "minimum", "le": "maximum", "gt": "exclusiveMinimum", "lt": "exclusiveMaximum"}


def _json_schema(node):
    """``node`` with pydantic's leftover bound names as JSON Schema's."""
    if isinstance(node, list):
        return [_json_schema(v) for v in node]
    if not isinstance(node, dict):
        return node
    numeric = node.get("type") in ("integer", "number")
    return {(_BOUNDS[k] if numeric and k in _BOUNDS else k): _json_schema(v) for k, v in node.items()}


class _Schemas:
    """``components.schemas``: every model once, referenced everywhere else."""

    def __init__(self) -> None:
        self.components: dict[str, Any] = {}

    def of_model(self, model: type[BaseModel]) -> dict:
        schema = _json_schema(model.model_json_schema(ref_template=REF))
        self.components.update(schema.pop("$defs", {}))
        return schema

    def ref(self, annotation) -> dict:
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            self.components[annotation.__name__] = self.of_model(annotation)
            return {"$ref": REF.format(model=annotation.__name__)}
        schema = _json_schema(TypeAdapter(annotation).json_schema(ref_template=REF))
        self.components.update(schema.pop("$defs", {}))
        return schema

    def content(self, body) -> dict | None:
        if body is None:
            return None
        if isinstance(body, Media):
            return {media: {"schema": self.ref(t) if t is not None else {}} for media, t in body.types.items()}
        return {JSON: {"schema": self.ref(body)}}


def _path(rule) -> str:
    return re.sub(r"<(?:[^<>:]+:)?([^<>]+)>", r"{\1}", rule.rule)


def _converter_schema(converter) -> dict:
    if isinstance(converter, IntegerConverter):
        return {"type": "integer", "minimum": 0 if not converter.signed else None}
    if isinstance(converter, FloatConverter):
        return {"type": "number"}
    if isinstance(converter, UUIDConverter):
        return {"type": "string", "format": "uuid"}
    if isinstance(converter, PathConverter):
        return {"type": "string", "minLength": 1}
    # No path segment holds a control character (``control/error_handling.py`` refuses them).
    return {"type": "string", "minLength": 1, "pattern": "^[^/\\u0000-\\u001f\\u007f-\\u009f]+$"}


def _parameters(rule, op: Operation, schemas: _Schemas, fixed: dict[str, str]) -> list:
    params = []
    for name, converter in rule._converters.items():
        if name in fixed:
            continue
        schema = schemas.ref(op.path[name]) if name in op.path else _converter_schema(converter)
        params.append({"name": name, "in": "path", "required": True,
                       "schema": {k: v for k, v in schema.items() if v is not None}})
    if op.query is not None:
        schema = schemas.of_model(op.query)
        for name, prop in schema.get("properties", {}).items():
            params.append({"name": name, "in": "query", "required": name in schema.get("required", []),
                           "description": prop.pop("description", None) or prop.get("title", name),
                           "schema": prop})
    return params


def _response(status: int, spec, schemas: _Schemas) -> dict:
    reply = spec if isinstance(spec, Reply) else Reply(spec)
    out: dict[str, Any] = {"description": reply.description or ERRORS.get(status) or
                           ("success" if status < 400 else "refused")}
    content = schemas.content(reply.body)
    if content:
        out["content"] = content
    headers = dict(reply.headers)
    if status == 429:
        headers.setdefault("Retry-After", "seconds until the request may be made again")
    if headers:
        out["headers"] = {name: {"description": text, "required": True, "schema": {"type": "string"}}
                          for name, text in headers.items()}
    return out


def _operation(view, rule, op: Operation, schemas: _Schemas, fixed: dict[str, str]) -> dict:
    params = _parameters(rule, op, schemas, fixed)
    statuses: dict[int, Any] = dict(op.responses)
    defaults = [429] + ([] if op.public else [401])
    if any(p["in"] == "path" for p in params) or fixed:
        defaults.append(404)
    if params or op.body is not None:     # a parameter out of its schema, a control character
        defaults.append(400)
    if op.body is not None:
        defaults += [413, 415]
    for status in defaults:
        statuses.setdefault(status, ErrorOut)
    operation_id = rule.endpoint.rpartition(".")[2] + "".join(f"_{v}" for v in fixed.values())
    out: dict[str, Any] = {"operationId": operation_id.replace("-", "_"),
                           "tags": [view.__module__.rpartition(".")[2]],
                           "summary": op.summary, "parameters": params,
                           "responses": {str(s): _response(s, statuses[s], schemas) for s in sorted(statuses)}}
    if op.description:
        out["description"] = op.description
    if op.public:
        out["security"] = []
    if op.body is not None:
        out["requestBody"] = {"required": True, "content": schemas.content(op.body)}
    return {k: v for k, v in out.items() if v != [] or k == "security"}


def _undocumented(rule) -> dict:
    return {"operationId": rule.endpoint.rpartition(".")[2], "x-undocumented": True,
            "summary": f"UNDOCUMENTED: add @api_doc to {rule.endpoint}",
            "responses": {"default": {"description": "not described"}}}


def document(app=None) -> dict:
    """The OpenAPI 3.1 document of every rule under ``/api`` in ``app`` (the current one)."""
    app = app or current_app
    schemas = _Schemas()
    paths: dict[str, dict] = {}
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if rule.rule != PREFIX and not rule.rule.startswith(PREFIX + "/"):
            continue
        view = app.view_functions[rule.endpoint]
        op = operation_of(view)
        methods = sorted(m.lower() for m in rule.methods - {"HEAD", "OPTIONS"})
        if op is None:
            for method in methods:
                paths.setdefault(_path(rule), {})[method] = _undocumented(rule)
            continue
        variants = [(_path(rule), op, {})]
        if op.variants:
            name, by_value = op.variants
            variants = [(_path(rule).replace("{" + name + "}", value), variant, {name: value})
                        for value, variant in by_value.items()]
        for path, variant, fixed in variants:
            for method in methods:
                paths.setdefault(path, {})[method] = _operation(view, rule, variant, schemas, fixed)
    return {"openapi": "3.1.0",
            "info": {"title": "BrightRun LoRA training API", "version": "1",
                     "description": "Errors are {\"error\": {\"code\", \"message\", \"field\"}}; "
                                    "every request but this document and signed links carries "
                                    "'Authorization: Bearer <token>'."},
            "components": {"schemas": schemas.components,
                           "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
            "security": [{"bearer": []}], "paths": paths}


@bp.get("/openapi.json")
@api_doc("This document: every operation, its parameters, bodies and answers", public=True,
         responses={200: dict[str, Any]})
def openapi():
    # The routes are fixed once the app is built: generate the document once per app.
    cached = current_app.extensions.get("openapi_document")
    if cached is None:
        cached = current_app.extensions["openapi_document"] = document()
    return jsonify(cached)

