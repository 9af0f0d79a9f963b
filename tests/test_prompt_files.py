"""The customer's own evaluation prompts: the prompts format (``shared/dataset/prompts.py``),
uploaded as a training file of purpose ``evaluation`` through the API and the console,
validated by the same task, filtered in the list, and never trained on."""
from __future__ import annotations

import io
import json

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from control.extensions import db
from control.models import TrainingFile
from control.models.training_file import PURPOSES
from shared.dataset.prompts import MAX_CHARS, MAX_PROMPTS, PROMPTS_FORMAT, parse_prompts
from shared.dataset.problems import MAX_LISTED
from shared.errors import DatasetError
from tests.test_console import Console
from tests.validation_tasks import run_validations, validating_in_background


def _jsonl(*objs) -> bytes:
    return "\n".join(o if isinstance(o, str) else json.dumps(o) for o in objs).encode()


GOOD = _jsonl(
    {"prompt": "How do I start an emergency fund?", "reference": "Start small: one month of costs."},
    "",
    {"messages": [{"role": "system", "content": "You are a kind financial planner."},
                  {"role": "user", "content": "I lost my job."},
                  {"role": "assistant", "content": "I'm sorry. How are you managing?"},
                  {"role": "user", "content": "Badly. What first?"}],
     "id": "job-loss", "category": "hardship"},
    {"prompt": "Should I pay off debt or invest?", "category": "debt", "reference": None},
)


def _problems(raw: bytes, **kw) -> DatasetError:
    with pytest.raises(DatasetError) as caught:
        parse_prompts(raw, name="prompts.jsonl", **kw)
    return caught.value


# ------------------------------------------------------------------------- the format

def test_it_reads_both_shapes_with_their_references_ids_and_categories():
    cases = parse_prompts(GOOD, name="prompts.jsonl")
    assert [c.id for c in cases] == ["p-1", "job-loss", "p-4"]     # the blank line 2 is skipped
    assert cases[0].messages == ({"role": "user", "content": "How do I start an emergency fund?"},)
    assert cases[0].reference == "Start small: one month of costs." and cases[0].category is None
    assert [m["role"] for m in cases[1].messages] == ["system", "user", "assistant", "user"]
    assert cases[1].question == "Badly. What first?" and cases[1].category == "hardship"
    assert cases[1].reference is None and cases[2].reference is None and cases[2].category == "debt"
    assert [c.line for c in cases] == [1, 3, 4]


@pytest.mark.parametrize("line, where, field, says", [
    ('{"prompt": "hi"', "line 2, column", None, "invalid JSON"),
    ('["hi"]', "line 2", None, "expected a JSON object, got array"),
    ({"prompt": "hi", "answer": "hello"}, "line 2", "answer", "unknown field"),
    ({"prompt": "hi", "messages": [{"role": "user", "content": "hi"}]}, "line 2", "messages", "not both"),
    ({"reference": "hello"}, "line 2", "prompt", "no prompt"),
    ({"prompt": "   "}, "line 2", "prompt", "an empty string"),
    ({"prompt": 7}, "line 2", "prompt", "got number"),
    ({"prompt": "x" * (MAX_CHARS + 1)}, "line 2", "prompt", "at most 16,000"),
    ({"messages": "hi"}, "line 2", "messages", "got string"),
    ({"messages": []}, "line 2", "messages", "an empty array"),
    ({"messages": [{"role": "robot", "content": "hi"}]}, "line 2", "messages[0].role", "unknown role"),
    ({"messages": [{"role": "user"}]}, "line 2", "messages[0].content", "got nothing"),
    ({"messages": [{"role": "user", "content": "hi", "weight": 1}]}, "line 2", "messages[0].weight",
     "unknown field"),
    ({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]},
     "line 2", "messages[1].role", "end with the user message"),
    ({"messages": [{"role": "system", "content": "x" * MAX_CHARS}, {"role": "user", "content": "hi"}]},
     "line 2", "messages", "at most 16,000"),
    ({"prompt": "hi", "reference": 3}, "line 2", "reference", "expected a string, got number"),
    ({"prompt": "hi", "reference": "x" * (MAX_CHARS + 1)}, "line 2", "reference", "at most 16,000"),
    ({"prompt": "hi", "category": "c" * 65}, "line 2", "category", "at most 64"),
    ({"prompt": "hi", "id": ""}, "line 2", "id", "empty"),
    ({"prompt": "hi", "id": None}, "line 2", "id", "got null"),
])
def test_each_kind_of_bad_line_is_named_by_its_line_and_field(line, where, field, says):
    exc = _problems(_jsonl({"prompt": "fine"}, line, {"prompt": "fine too"}))
    assert exc.total == 1, exc.message
    problem = exc.problems[0]
    assert problem.where.startswith(where) and problem.field == field and says in problem.message, problem


def test_every_problem_is_listed_up_to_the_datasets_cap():
    bad = [{"prompt": "hi", "extra": i} for i in range(MAX_LISTED + 50)]
    exc = _problems(_jsonl({"prompt": "fine"}, *bad))
    assert exc.total == MAX_LISTED + 50 and len(exc.problems) == MAX_LISTED
    assert exc.problems[0].where == "line 2" and exc.problems[-1].where == f"line {MAX_LISTED + 1}"
    assert f"first {MAX_LISTED} shown" in exc.message


def test_more_than_a_thousand_prompts_are_refused_at_the_first_one_too_many():
    raw = _jsonl(*({"prompt": f"question {i}"} for i in range(MAX_PROMPTS + 5)))
    exc = _problems(raw)
    assert exc.total == 1
    assert exc.problems[0].where == f"line {MAX_PROMPTS + 1}" and "at most 1,000 prompts" in exc.problems[0].message
    assert len(parse_prompts(_jsonl(*({"prompt": "q"} for _ in range(MAX_PROMPTS))), name="p")) == MAX_PROMPTS


def test_duplicate_ids_are_refused_naming_both_lines():
    exc = _problems(_jsonl({"prompt": "a", "id": "x"}, {"prompt": "b"}, {"prompt": "c", "id": "x"},
                           {"prompt": "d", "id": "p-2"}))
    assert [(p.where, p.field) for p in exc.problems] == [("line 3", "id"), ("line 4", "id")]
    assert 'duplicate id "x": line 1 has it too' in exc.problems[0].message
    # A prompt without an id is named after its line: an explicit id may clash with it.
    assert 'duplicate id "p-2": line 2' in exc.problems[1].message and "p-<line>" in exc.problems[1].message


@pytest.mark.parametrize("raw, where, says", [
    (b"", "file", "the file is empty"),
    (b"\n  \n", "file", "the file is empty"),
    (b'{"prompt": "caf\xe9"}', "byte 15", "not UTF-8"),
])
def test_an_empty_or_undecodable_file_says_so(raw, where, says):
    exc = _problems(raw)
    assert exc.problems[0].where == where and says in exc.problems[0].message


def test_a_file_over_the_byte_limit_is_refused_before_it_is_read():
    exc = _problems(GOOD, max_bytes=100)
    assert exc.problems[0].where == "file" and "larger than" in exc.problems[0].message


def test_a_line_separator_inside_a_prompt_does_not_split_its_line():
    cases = parse_prompts('{"prompt": "one\u2028two"}\n'.encode(), name="p.jsonl")
    assert cases[0].question == "one\u2028two"


# ------------------------------------------------------------------------- the API

def _api_upload(app, client, auth, data: bytes, purpose="evaluation", wait=True, filename="prompts.jsonl",
                **form):
    fields = {"file": (io.BytesIO(data), filename), **form}
    if purpose is not None:
        fields["purpose"] = purpose
    with validating_in_background(app):
        return client.post(f"/api/training-files{'?wait=true' if wait else ''}", headers=auth,
                           data=fields, content_type="multipart/form-data")


def test_an_evaluation_upload_ends_ready_with_its_count_and_a_preview(app, client, auth):
    r = _api_upload(app, client, auth, GOOD)
    assert r.status_code == 201, r.get_json()
    body = r.get_json()
    assert body["purpose"] == "evaluation" and body["format"] == PROMPTS_FORMAT and body["status"] == "ready"
    assert body["statistics"]["prompts"] == 3 and body["statistics"]["with_reference"] == 1
    assert body["statistics"]["categories"] == {"hardship": 1, "debt": 1}
    assert client.get(f"/api/training-files/{body['id']}", headers=auth).get_json() == body
    preview = db.session.get(TrainingFile, body["id"]).preview
    assert [p["id"] for p in preview] == ["p-1", "job-loss", "p-4"]
    assert preview[0]["reference"]["content"] == "Start small: one month of costs."
    assert preview[1]["messages"][-1] == {"role": "user", "content": "Badly. What first?", "cut": False}


def test_a_dataset_upload_without_a_purpose_is_a_fine_tune_file(app, client, auth, small_sample):
    r = _api_upload(app, client, auth, small_sample, purpose=None, filename="data.json")
    assert r.status_code == 201 and r.get_json()["purpose"] == "fine-tune"
    assert r.get_json()["statistics"]["conversations"] == 8


def test_a_bad_prompts_file_ends_invalid_with_every_problem_placed(app, client, auth):
    bad = _jsonl({"prompt": "fine"}, {"prompt": "hi", "reference": 3}, {"messages": [{"role": "assistant",
                                                                                    "content": "x"}]})
    r = client.post("/api/training-files", headers=auth, content_type="multipart/form-data",
                    data={"file": (io.BytesIO(bad), "prompts.jsonl"), "purpose": "evaluation"})
    assert r.status_code == 202 and r.get_json()["status"] == "validating"
    run_validations(app)
    body = client.get(r.headers["Location"], headers=auth).get_json()
    assert body["status"] == "invalid" and body["statistics"] is None
    assert [(p["where"], p["field"]) for p in body["problems"]] == [("line 2", "reference"),
                                                                   ("line 3", "messages[0].role")]
    # Waiting for it answers as a synchronous upload did: 422, every problem, nothing kept.
    r = _api_upload(app, client, auth, bad)
    assert r.status_code == 422
    assert [d["where"] for d in r.get_json()["error"]["details"]] == ["line 2", "line 3"]


def test_a_dataset_uploaded_as_evaluation_is_read_as_prompts_and_refused(app, client, auth, small_sample):
    r = _api_upload(app, client, auth, small_sample, filename="data.json")
    assert r.status_code == 422
    fields = {d["field"] for d in r.get_json()["error"]["details"]}
    assert {"conversations", "training_file_metadata"} <= fields


def test_an_unknown_purpose_is_refused_naming_the_allowed_ones(app, client, auth):
    r = _api_upload(app, client, auth, GOOD, purpose="training")
    assert r.status_code == 400
    error = r.get_json()["error"]
    assert error["field"] == "purpose" and "'training'" in error["message"]
    assert "fine-tune, evaluation" in error["message"]
    assert client.get("/api/training-files", headers=auth).get_json()["data"] == []     # nothing kept
    doc = client.get("/api/openapi.json").get_json()["components"]["schemas"]
    assert tuple(doc["UploadForm"]["properties"]["purpose"]["enum"][:2]) == PURPOSES


def test_a_format_of_the_other_purpose_is_refused(app, client, auth, small_sample):
    r = _api_upload(app, client, auth, GOOD, format="chat-jsonl")
    assert r.status_code == 400 and r.get_json()["error"]["field"] == "format"
    assert "prompts-jsonl" in r.get_json()["error"]["message"]
    r = _api_upload(app, client, auth, small_sample, purpose="fine-tune", format="prompts-jsonl")
    assert r.status_code == 400 and "brightrun-lora-v4, chat-jsonl" in r.get_json()["error"]["message"]
    assert _api_upload(app, client, auth, GOOD, format="prompts-jsonl").status_code == 201


def test_the_list_filters_by_purpose(app, client, auth, small_sample):
    dataset = _api_upload(app, client, auth, small_sample, purpose="fine-tune", filename="d.json").get_json()
    prompts = _api_upload(app, client, auth, GOOD).get_json()

    def ids(query=""):
        r = client.get(f"/api/training-files{query}", headers=auth)
        assert r.status_code == 200, r.get_json()
        return [f["id"] for f in r.get_json()["data"]]
    assert ids("?purpose=evaluation") == [prompts["id"]]
    assert ids("?purpose=fine-tune") == [dataset["id"]]
    assert set(ids()) == {dataset["id"], prompts["id"]}
    r = client.get("/api/training-files?purpose=prompts", headers=auth)
    assert r.status_code == 400 and r.get_json()["error"]["field"] == "purpose"
    assert "fine-tune" in r.get_json()["error"]["message"]


def test_a_job_on_an_evaluation_file_is_refused_naming_the_file_and_its_purpose(app, client, auth):
    file_id = _api_upload(app, client, auth, GOOD).get_json()["id"]
    r = client.post("/api/training/jobs", headers=auth, json={"training_file_id": file_id})
    assert r.status_code == 409, r.get_json()
    error = r.get_json()["error"]
    assert error["code"] == "training_file_wrong_purpose"
    assert f"training file {file_id} is an evaluation file" in error["message"]
    assert "only a fine-tune file can be trained on" in error["message"]
    r = client.get(f"/api/training/cost-estimate?training_file_id={file_id}", headers=auth)
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "training_file_wrong_purpose"
    assert client.get("/api/training/jobs", headers=auth).get_json()["total"] == 0


# ------------------------------------------------------------------------- the console

@pytest.fixture
def console(app, make_person):
    make_person()
    return Console(app).login("ana@example.com")


def _console_upload(console, data: bytes, purpose: str, name="prompts.jsonl"):
    page = console.get("/files").get_data(as_text=True)
    assert 'name="purpose"' in page and 'value="evaluation"' in page
    r = console.post("/files", {"file": (io.BytesIO(data), name), "purpose": purpose},
                     content_type="multipart/form-data")
    run_validations(console.app)
    return r


def test_the_console_uploads_prompts_for_evaluation_and_previews_them(console):
    r = _console_upload(console, GOOD, "evaluation")
    assert r.status_code == 302, r.get_data(as_text=True)
    html = console.get(r.headers["Location"]).get_data(as_text=True)
    assert 'data-purpose="evaluation"' in html and "Preview: the first prompts" in html
    assert html.count('class="conversation prompt-case"') == 3
    assert "job-loss" in html and "Badly. What first?" in html and "Start small: one month of costs." in html
    assert "New job with this file" not in html and "Folding saves" not in html
    files = console.get("/files").get_data(as_text=True)
    assert "3 prompts, 1 with a reference" in files and '<td data-purpose="evaluation">' in files


def test_the_console_shows_a_bad_prompts_file_with_its_problems(console):
    r = _console_upload(console, _jsonl({"prompt": "ok"}, {"prompt": "hi", "answer": "no"}), "evaluation")
    html = console.get(r.headers["Location"]).get_data(as_text=True)
    assert "It cannot be used for an evaluation" in html
    assert "<td>line 2</td><td>answer</td>" in html


def test_the_console_refuses_an_unknown_purpose(console):
    r = _console_upload(console, GOOD, "training")
    assert r.status_code == 400 and "Unknown purpose &#39;training&#39;" in r.get_data(as_text=True)
    assert "prompts.jsonl" not in console.get("/files").get_data(as_text=True)


# ------------------------------------------------------------------------- the schema

def test_the_migrations_build_the_schema_the_models_describe(app, make_user):
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, db.metadata) == []
    # A file recorded without a purpose (as every file before this revision) is a dataset.
    user_id, _ = make_user()
    db.session.execute(db.text(
        "INSERT INTO training_files (id, filename, storage_key, sha256, size_bytes, status, created_by, "
        "created_at) VALUES ('file_old', 'old.json', 'k', 's', 1, 'ready', :user, CURRENT_TIMESTAMP)"),
        {"user": user_id})
    db.session.commit()
    assert db.session.get(TrainingFile, "file_old").purpose == "fine-tune"
