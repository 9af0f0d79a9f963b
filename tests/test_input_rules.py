"""Strict input rules, tried as an attacker would, on Postgres and SQLite: every integer
bounded, every setting capped, text without control characters, one key once, JSON only in
UTF-8, dates in ISO 8601, and one answer for a body over a size limit."""
from __future__ import annotations

import http.client
import io
import json
import threading

import pytest

from control.extensions import db
from control.models import TrainingJob
from control.request_limits import server_body_limit
from shared.job_input import MAX_STEPS, request_setting

HUGE = "9223372036854775807"       # BIGINT's maximum: past it, Postgres and SQLite overflow


def _post_job(client, auth, body, **kw):
    return client.post("/api/training/jobs", headers=auth, json=body, **kw)


def _raw_job(client, auth, text: str | bytes, content_type="application/json"):
    return client.post("/api/training/jobs", headers=auth, data=text, content_type=content_type)


def _error(r, status):
    assert r.status_code == status, (r.status_code, r.get_data(as_text=True))
    return r.get_json()["error"]


# ------------------------------------------------------------------ integers out of range

@pytest.mark.parametrize("query,field", [
    (f"page={HUGE}", "page"), ("page=1000001", "page"), (f"per_page={HUGE}", "per_page"),
    ("page=0", "page"), ("per_page=201", "per_page"),
])
def test_a_huge_page_of_the_job_list_is_a_400_naming_the_parameter(client, auth, query, field):
    err = _error(client.get(f"/api/training/jobs?{query}", headers=auth), 400)
    assert err["field"] == field and field in err["message"]


def test_the_last_allowed_page_is_an_empty_page_not_an_error(client, auth):
    r = client.get("/api/training/jobs?page=1000000", headers=auth)
    assert r.status_code == 200 and r.get_json()["data"] == []


@pytest.mark.parametrize("path,query,field", [
    ("metrics", f"since_step={HUGE}", "since_step"),
    ("metrics", f"since_step={2**31}", "since_step"),
    ("events", f"after_id={2**53 + 1}", "after_id"),
    ("events", f"after_id={HUGE}", "after_id"),
    ("events", "after_id=-1", "after_id"),
    ("events", f"attempt={HUGE}", "attempt"),
    ("events", "attempt=1001", "attempt"),
])
def test_huge_cursors_on_a_jobs_records_are_400s_naming_them(client, auth, job, path, query, field):
    err = _error(client.get(f"/api/training/jobs/{job.id}/{path}?{query}", headers=auth), 400)
    assert err["field"] == field


def test_the_largest_cursors_allowed_answer_empty_pages(client, auth, job):
    r = client.get(f"/api/training/jobs/{job.id}/metrics?since_step={2**31 - 1}", headers=auth)
    assert r.status_code == 200 and r.get_json()["data"] == []
    r = client.get(f"/api/training/jobs/{job.id}/events?after_id={2**53}&attempt=1000", headers=auth)
    assert r.status_code == 200 and r.get_json()["data"] == []


def test_a_parameter_given_twice_is_refused_rather_than_one_value_picked(client, auth):
    err = _error(client.get("/api/training/jobs?page=1&page=2", headers=auth), 400)
    assert err["field"] == "page" and "more than once" in err["message"]


# ------------------------------------------------------------------ settings capped

@pytest.mark.parametrize("setting,value", [
    ("max_steps", 10**30), ("max_steps", MAX_STEPS + 1), ("num_epochs", 101),
    ("max_seq_length", 131073), ("lora_r", 1025), ("batch_size", 513),
    ("gradient_accumulation_steps", 1025), ("learning_rate", 2), ("checkpoint_every_steps", 10**9),
])
def test_a_setting_over_its_maximum_is_a_400_naming_it(client, auth, setting, value):
    body = {"training_file_id": "file_x", "hyperparameters": {setting: value}}
    err = _error(_post_job(client, auth, body), 400)
    assert err["field"] == f"hyperparameters.{setting}"
    assert "less than or equal" in err["message"]
    assert db.session.query(TrainingJob).count() == 0


def test_the_cost_estimate_caps_the_same_settings(client, auth, file_id):
    err = _error(client.get(f"/api/training/cost-estimate?training_file_id={file_id}"
                            f"&max_steps={10**30}", headers=auth), 400)
    assert err["field"] == "max_steps"


def test_the_maximum_is_defined_once_and_the_form_and_the_cli_read_it():
    from control.cli import describe_range
    from control.console.job_form import parse
    from control.schemas import HyperparameterOverrides
    assert request_setting("max_steps").bounds["le"] == MAX_STEPS
    schema = HyperparameterOverrides.model_json_schema()["properties"]["max_steps"]["anyOf"][0]
    assert schema["maximum"] == MAX_STEPS
    _, errors = parse({"training_file_id": "f", "preset": "balanced", "max_steps": str(10**30),
                       "pricing": "spot"})
    assert "less than or equal to 1000000" in errors["max_steps"]
    assert describe_range(request_setting("max_steps").bounds) == f"1<=x<={MAX_STEPS}"


def test_the_cli_refuses_a_step_limit_past_the_maximum(tmp_path, small_sample):
    from click.testing import CliRunner

    from control.cli import main
    data = tmp_path / "data.json"
    data.write_bytes(small_sample)
    r = CliRunner().invoke(main, ["train", str(data), "--out", str(tmp_path / "run"),
                                  "--max-steps", str(10**30)])
    assert r.exit_code == 2 and "max_steps" in r.output
    assert not (tmp_path / "run").exists()


# ------------------------------------------------------------------ whole numbers

def test_a_whole_float_is_the_integer_json_schema_says_it_is(client, auth, file_id):
    r = _raw_job(client, auth, json.dumps({"training_file_id": file_id,
                                           "hyperparameters": {"batch_size": 90.0, "max_steps": 3e0}}))
    assert r.status_code == 201, r.get_json()
    job = db.session.get(TrainingJob, r.get_json()["id"])
    assert job.configuration["overrides"]["batch_size"] == 90
    assert type(job.configuration["overrides"]["batch_size"]) is int


@pytest.mark.parametrize("value,needle", [(90.5, "whole number"), (True, "valid integer"),
                                          ("90", "valid integer")])
def test_a_fraction_a_boolean_or_a_string_is_not_a_batch_size(client, auth, value, needle):
    body = {"training_file_id": "file_x", "hyperparameters": {"batch_size": value}}
    err = _error(_post_job(client, auth, body), 400)
    assert err["field"] == "hyperparameters.batch_size" and needle in err["message"]


def test_nan_and_infinity_are_not_json(client, auth):
    for text in ('{"training_file_id": "f", "hyperparameters": {"learning_rate": NaN}}',
                 '{"training_file_id": "f", "hyperparameters": {"max_steps": Infinity}}'):
        assert _error(_raw_job(client, auth, text), 400)["code"] == "malformed_json"


# ------------------------------------------------------------------ text

@pytest.mark.parametrize("field,value", [
    ("name", "run\x00one"), ("name", "run\x1b[31mred"), ("notes", "a\x00b"),
    ("description", "bell\x07"), ("base_model", "embedded\x00"), ("training_file_id", "file_\x00"),
])
def test_control_characters_in_text_are_refused_naming_the_field_on_postgres_too(
        client, auth, field, value):
    body = {"training_file_id": "file_x", field: value}
    err = _error(_post_job(client, auth, body), 400)
    assert err["field"] == field and "control characters" in err["message"]
    assert db.session.query(TrainingJob).count() == 0


def test_a_nul_in_a_tag_is_refused_naming_the_tag(client, auth):
    err = _error(_post_job(client, auth, {"training_file_id": "f", "tags": ["ok", "b\x00d"]}), 400)
    assert err["field"] == "tags.1"


def test_notes_and_descriptions_keep_their_newlines_and_tabs(client, auth, file_id):
    notes = "line one\r\nline two\n\tindented"
    r = _post_job(client, auth, {"training_file_id": file_id, "notes": notes,
                                 "description": "a\tb\nc"})
    assert r.status_code == 201, r.get_json()
    assert db.session.get(TrainingJob, r.get_json()["id"]).notes == notes
    err = _error(_post_job(client, auth, {"training_file_id": file_id, "name": "two\nlines"}), 400)
    assert err["field"] == "name"


@pytest.mark.parametrize("url,field", [
    ("/api/training/jobs?q=a%00b", "q"), ("/api/training/jobs?tag=%00", "tag"),
    ("/api/training/jobs?status=running%00", "status"), ("/api/training/jobs/tj_%00x", "job_id"),
    ("/api/training-files/file_%00", "file_id"), ("/api/training/jobs/tj_x/events?type=%1b", "type"),
])
def test_a_nul_in_a_query_or_a_path_is_a_400_naming_it_not_a_500(client, auth, url, field):
    err = _error(client.get(url, headers=auth), 400)
    assert err["field"] == field and "control characters" in err["message"]


# ------------------------------------------------------------------ one JSON document, once

def test_a_duplicate_key_is_refused_naming_it(client, auth):
    err = _error(_raw_job(client, auth, '{"training_file_id": "f", "name": "a", "name": "b"}'), 400)
    assert (err["code"], err["field"]) == ("duplicate_key", "name")
    nested = '{"training_file_id": "f", "hyperparameters": {"max_steps": 3, "max_steps": 3000000}}'
    assert _error(_raw_job(client, auth, nested), 400)["field"] == "max_steps"
    assert db.session.query(TrainingJob).count() == 0


@pytest.mark.parametrize("content_type", [
    "application/vnd.x+json", "application/json; charset=latin-1", "application/json; charset=utf-16",
    "text/plain", "application/x-www-form-urlencoded",
])
def test_only_utf8_application_json_bodies_are_read(client, auth, content_type):
    err = _error(_raw_job(client, auth, '{"training_file_id": "f"}', content_type), 415)
    assert err["code"] == "unsupported_media_type"


def test_utf8_stated_or_not_is_read(client, auth, file_id):
    for content_type in ("application/json; charset=utf-8", "application/json; charset=UTF-8",
                         "Application/JSON"):
        r = _raw_job(client, auth, json.dumps({"training_file_id": file_id, "name": "café"}), content_type)
        assert r.status_code == 201, (content_type, r.get_json())


def test_a_body_that_is_not_utf8_is_a_400(client, auth):
    err = _error(_raw_job(client, auth, '{"training_file_id": "f", "name": "café"}'.encode("latin-1")), 400)
    assert err["code"] == "invalid_encoding" and "UTF-8" in err["message"]


def test_deep_nesting_and_giant_integers_are_400s_not_500s(client, auth):
    deep = '{"training_file_id": "f", "name": ' + "[" * 100_000 + "]" * 100_000 + "}"
    assert _error(_raw_job(client, auth, deep), 400)["code"] == "malformed_json"
    giant = '{"training_file_id": "f", "hyperparameters": {"max_steps": ' + "9" * 5000 + "}}"
    assert _error(_raw_job(client, auth, giant), 400)["code"] == "malformed_json"


# ------------------------------------------------------------------ dates

@pytest.mark.parametrize("value", ["0.5", "1700000000", "-1", "yesterday", "2024-13-01"])
def test_a_date_that_is_not_iso_8601_is_a_400(client, auth, value):
    err = _error(client.get(f"/api/training/jobs?created_before={value}", headers=auth), 400)
    assert err["field"] == "created_before" and "ISO 8601" in err["message"]


def test_iso_dates_and_datetimes_filter_the_list(client, auth, file_id):
    _post_job(client, auth, {"training_file_id": file_id})
    for query, count in [("created_after=2000-01-01", 1), ("created_before=2000-01-01", 0),
                         ("created_after=2000-01-01T00:00:00Z", 1),
                         ("created_before=2999-01-01T00:00:00%2B02:00", 1)]:
        r = client.get(f"/api/training/jobs?{query}", headers=auth)
        assert r.status_code == 200 and len(r.get_json()["data"]) == count, query


# ------------------------------------------------------------------ size limits, one answer

def _small_limit(app, limit):
    app.config.update(DATASET_MAX_BYTES=limit, MAX_CONTENT_LENGTH=limit + 1024 * 1024)


def test_a_dataset_one_byte_over_the_limit_is_a_json_413_naming_the_limit_in_bytes(
        app, upload, small_sample):
    _small_limit(app, len(small_sample) - 1)
    err = _error(upload(small_sample), 413)
    assert err["code"] == "payload_too_large" and err["field"] == "file"
    assert f"the limit is {len(small_sample) - 1} bytes" in err["message"]
    _small_limit(app, len(small_sample))
    assert upload(small_sample).status_code == 201          # exactly at the limit


def test_a_body_over_the_whole_limit_is_the_same_json_413(app, client, auth):
    app.config["MAX_CONTENT_LENGTH"] = 4096
    r = client.post("/api/training-files", headers=auth, data={"file": (io.BytesIO(b"x" * 8192), "d.json")},
                    content_type="multipart/form-data")
    err = _error(r, 413)
    assert err["code"] == "payload_too_large" and "the limit is 4096 bytes" in err["message"]


def test_a_json_body_over_its_limit_is_the_same_json_413(client, auth, app):
    limit = app.config["MAX_JSON_BYTES"]
    err = _error(_raw_job(client, auth, "[" + "1," * limit + "1]"), 413)
    assert err["code"] == "payload_too_large" and f"the limit is {limit} bytes" in err["message"]


def test_the_web_server_lets_the_app_answer_a_body_just_over_the_limit(app, auth, small_sample):
    """waitress's own limit sits above the app's, so the answer is the app's JSON 413."""
    from waitress.server import create_server
    _small_limit(app, 1000)
    server = create_server(app, host="127.0.0.1", port=0, threads=2,
                           max_request_body_size=server_body_limit(app.config))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        boundary = "zz"
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"d.json\"\r\n"
                f"Content-Type: application/json\r\n\r\n").encode() + b"x" * (app.config["MAX_CONTENT_LENGTH"] + 10) \
            + f"\r\n--{boundary}--\r\n".encode()
        conn = http.client.HTTPConnection("127.0.0.1", server.effective_port, timeout=30)
        conn.request("POST", "/api/training-files", body=body, headers={
            **auth, "Content-Type": f"multipart/form-data; boundary={boundary}"})
        r = conn.getresponse()
        assert r.status == 413 and r.getheader("Content-Type") == "application/json"
        err = json.loads(r.read())["error"]
        assert err["code"] == "payload_too_large"
        assert f"the limit is {app.config['MAX_CONTENT_LENGTH']} bytes" in err["message"]
    finally:
        server.close()
        thread.join(timeout=5)


# ------------------------------------------------------------------ the console

@pytest.fixture
def console(app, make_person):
    from tests.test_console import Console
    make_person()
    return Console(app).login("ana@example.com")


@pytest.mark.parametrize("page", [HUGE, "9" * 400, "-5", "x", "1e9"])
def test_a_huge_or_mistyped_page_of_the_consoles_list_shows_a_page(console, page):
    r = console.get(f"/jobs?page={page}")
    assert r.status_code == 200


@pytest.fixture
def console_file(console, small_sample):
    """A ready training file of the console's user."""
    from tests.test_console import _upload
    from tests.validation_tasks import run_validations
    r = _upload(console, small_sample)
    assert r.status_code == 302, r.get_data(as_text=True)
    run_validations(console.app)
    return r.headers["Location"].split("?")[0].rsplit("/", 1)[1]


def test_the_job_pages_live_updates_take_huge_cursors_without_a_500(console, console_file):
    from tests.test_console import _create
    job_id = _create(console, console_file)
    r = console.get(f"/jobs/{job_id}/live.json?since_step={HUGE}&after_id={HUGE}")
    assert r.status_code == 200 and r.get_json()["points"] == []


def test_a_nul_in_a_console_form_is_a_page_that_says_so_not_a_500(app, make_person):
    from tests.test_console import Console
    make_person()
    visitor = Console(app)
    visitor.get("/login")
    r = visitor.post("/login", {"email": "ana\x00@example.com", "password": "whatever-it-is"})
    html = r.get_data(as_text=True)
    assert r.status_code == 400 and "email" in html and "control characters" in html


def test_a_job_name_on_two_lines_is_marked_on_the_console_form(console, console_file):
    from tests.test_console import _job_form
    console.get("/jobs/new")
    r = console.post("/jobs/review", _job_form(console_file, name="two\nlines",
                                               notes="notes may\r\nhave lines"))
    html = r.get_data(as_text=True)
    assert r.status_code == 400 and 'id="name-error"' in html and "control characters" in html
    assert "notes-error" not in html


def test_a_nul_in_the_consoles_search_is_a_page_that_says_so(console):
    r = console.get("/jobs?q=a%00b")
    assert r.status_code == 400 and "control characters" in r.get_data(as_text=True)


def test_a_dataset_over_the_limit_gets_the_consoles_413_page(console, app, small_sample):
    from tests.test_console import _upload
    _small_limit(app, 100)
    r = _upload(console, small_sample)
    html = r.get_data(as_text=True)
    assert r.status_code == 413 and r.mimetype == "text/html"
    assert "the limit is 100 bytes" in html and "DATASET_MAX_BYTES" in html
