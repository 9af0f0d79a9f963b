"""The OpenAPI document is generated from the routes, 405s name the allowed methods, and every
answer carries the security headers; on Postgres and SQLite."""
from __future__ import annotations

import re

import pytest
from flask import Flask

from control.api.documentation import api_doc
from control.api.openapi import document
from control.responses import ErrorOut, JobOut
from control.security_headers import CONTENT_SECURITY_POLICY


def _served(app) -> set[tuple[str, str]]:
    served = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api"):
            path = re.sub(r"<(?:[^<>:]+:)?([^<>]+)>", r"{\1}", rule.rule)
            served |= {(m, path) for m in rule.methods - {"HEAD", "OPTIONS"}}
    return served


def _documented(doc) -> set[tuple[str, str]]:
    return {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}


def test_every_api_route_is_in_the_document_with_its_metadata(client, app):
    doc = client.get("/api/openapi.json").get_json()
    undocumented = [f"{m.upper()} {p}" for p, ops in doc["paths"].items() for m, op in ops.items()
                    if op.get("x-undocumented")]
    assert undocumented == [], f"routes without @api_doc: {undocumented}"
    documented = _documented(doc)
    # A route with variants (``/download/<kind>``) is described once per value of its parameter.
    for method, path in _served(app):
        if "{kind}" in path:
            assert any(m == method and re.fullmatch(path.replace("{kind}", "[a-z-]+"), p)
                       for m, p in documented), path
        else:
            assert (method, path) in documented


def test_every_body_and_every_success_answer_has_a_schema(client):
    doc = client.get("/api/openapi.json").get_json()
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            for media in op.get("requestBody", {}).get("content", {}).values():
                assert media["schema"], (method, path)
            for status, answer in op["responses"].items():
                if status.startswith("2") and status != "204":
                    assert answer.get("content"), f"{method.upper()} {path} {status} has no schema"
                if status.startswith("4"):
                    assert answer["content"]["application/json"]["schema"] == \
                        {"$ref": "#/components/schemas/ErrorOut"}
    schemas = doc["components"]["schemas"]
    refs = set(re.findall(r'"#/components/schemas/([^"]+)"', str(doc).replace("'", '"')))
    assert refs <= set(schemas), refs - set(schemas)
    assert schemas["JobOut"]["additionalProperties"] is False
    assert "status" in schemas["JobOut"]["required"]


def test_a_route_added_without_metadata_is_marked_undocumented_not_left_out():
    app = Flask(__name__)

    @app.get("/api/things/<int:thing_id>")
    def thing(thing_id):
        return {}

    @app.get("/api/described/<name>")
    @api_doc("A described thing", responses={200: JobOut, 409: ErrorOut})
    def described(name):
        return {}

    with app.app_context():
        doc = document(app)
    assert doc["paths"]["/api/things/{thing_id}"]["get"]["x-undocumented"] is True
    op = doc["paths"]["/api/described/{name}"]["get"]
    assert op["summary"] == "A described thing"
    assert op["parameters"][0]["name"] == "name" and op["parameters"][0]["in"] == "path"
    assert op["responses"]["200"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/JobOut"}
    assert {"401", "404", "409", "429"} <= set(op["responses"])


def test_path_parameters_come_from_the_rules_converters_and_bounds_are_json_schema():
    app = Flask(__name__)

    @app.get("/api/pages/<int:number>")
    @api_doc("A page", responses={200: JobOut})
    def page(number):
        return {}

    with app.app_context():
        doc = document(app)
    (param,) = doc["paths"]["/api/pages/{number}"]["get"]["parameters"]
    assert param["schema"] == {"type": "integer", "minimum": 0}
    # Pydantic's own names for bounds ("ge", "le") never leak into the document.
    assert not re.search(r"'(ge|le|gt|lt)':", str(doc))


def test_the_document_is_public_and_declares_bearer_auth_everywhere_else(client):
    doc = client.get("/api/openapi.json").get_json()
    assert doc["components"]["securitySchemes"]["bearer"] == {"type": "http", "scheme": "bearer"}
    assert doc["paths"]["/api/openapi.json"]["get"]["security"] == []
    assert doc["paths"]["/api/training/jobs"]["get"].get("security") is None     # the global one
    assert "401" in doc["paths"]["/api/training/jobs"]["get"]["responses"]


@pytest.mark.parametrize("method,path", [("PUT", "/api/training/jobs"), ("PATCH", "/api/training-files"),
                                         ("POST", "/api/openapi.json")])
def test_a_wrong_method_on_the_api_gets_405_with_allow(client, auth, method, path):
    r = client.open(path, method=method, headers=auth)
    assert r.status_code == 405
    assert r.get_json()["error"]["code"] == "method_not_allowed"
    allowed = {m.strip() for m in r.headers["Allow"].split(",")}
    assert allowed & {"GET", "POST", "DELETE"} and method not in allowed


def test_a_wrong_method_on_a_console_page_gets_the_html_405_with_allow(client):
    r = client.put("/login")
    assert r.status_code == 405 and r.mimetype == "text/html"
    assert {"GET", "POST"} <= {m.strip() for m in r.headers["Allow"].split(",")}


@pytest.mark.parametrize("path", ["/login", "/api/openapi.json", "/api/training/jobs", "/healthz",
                                  "/no-such-page", "/api/no-such-route", "/console-static/console.js"])
def test_every_answer_carries_the_security_headers(client, path):
    r = client.get(path)
    assert r.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert r.headers["X-Frame-Options"] == "DENY"
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Referrer-Policy"] == "same-origin"


def test_the_policy_forbids_inline_script_framing_and_foreign_sources():
    directives = dict(d.strip().split(" ", 1) for d in CONTENT_SECURITY_POLICY.split(";"))
    assert directives["script-src"] == "'self'" and directives["style-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'" and directives["object-src"] == "'none'"
    assert "unsafe" not in CONTENT_SECURITY_POLICY


def test_no_console_template_holds_inline_script_handlers_or_styles():
    from pathlib import Path
    root = Path(__file__).resolve().parents[1] / "control" / "console" / "templates"
    for template in root.rglob("*.html"):
        html = template.read_text()
        assert not re.search(r"\sstyle\s*=", html), f"{template.name}: a style attribute"
        assert not re.search(r"<style", html), f"{template.name}: a <style> element"
        assert not re.search(r"\son[a-z]+\s*=", html), f"{template.name}: an inline event handler"
        assert "javascript:" not in html, template.name
        for script in re.findall(r"<script[^>]*>", html):
            assert "src=" in script or 'type="application/json"' in script, f"{template.name}: {script}"
