"""A dataset is validated and analysed once, by a task, off the request path (issue 11,
defect 1): an upload answers at once, the file is ``validating`` and then ``ready`` or
``invalid`` with every problem; pages and reads never parse it again; only a ready file
trains. On Postgres and SQLite, with the real Redis and, where it says so, a real worker."""
from __future__ import annotations

import hashlib
import io
import json
import time
from datetime import timedelta

import pytest
from rq import SimpleWorker

from control.extensions import db
from control.models import TrainingFile, TrainingJob, User
from control.services import training_files
from control.services.queue import VALIDATE_TRAINING_FILE, get_queue, redis_connection
from control.services.storage import get_storage
from shared.dataset import parse_bytes
from shared.errors import DatasetError
from tests.live_system import RQWorkerProcess
from tests.test_console import Console
from tests.validation_tasks import validating_in_background


def _post(client, auth, data: bytes, name="data.json", query=""):
    return client.post(f"/api/training-files{query}", headers=auth,
                       data={"file": (io.BytesIO(data), name)}, content_type="multipart/form-data")


def _work():
    """Run the queue in this process, as a worker would."""
    SimpleWorker([get_queue()], connection=redis_connection()).work(burst=True)


def _broken(sample_doc) -> bytes:
    del sample_doc["conversations"][1]["training_pairs"][0]["target_response"]
    sample_doc["conversations"][3]["training_pairs"][1]["current_user_input"] = 7
    return json.dumps(sample_doc).encode()


def _job(client, auth, file_id):
    return client.post("/api/training/jobs", headers=auth, json={"training_file_id": file_id})


@pytest.fixture
def console(app, make_person):
    make_person()
    return Console(app).login("ana@example.com")


# ---------------------------------------------------------------------------- the upload

def test_an_upload_answers_at_once_with_the_file_validating_and_its_bytes_stored(client, auth, small_sample):
    r = _post(client, auth, small_sample, "sample.json")
    body = r.get_json()
    assert r.status_code == 202, body
    assert body["status"] == "validating" and body["statistics"] is None and body["validated_at"] is None
    assert r.headers["Location"].endswith(f"/api/training-files/{body['id']}")
    assert body["sha256"] == hashlib.sha256(small_sample).hexdigest()
    assert body["size_bytes"] == len(small_sample)
    row = db.session.get(TrainingFile, body["id"])
    assert row.status == "validating"
    assert get_storage().get_bytes(row.storage_key) == small_sample
    assert [j.func_name for j in get_queue().get_jobs()] == [VALIDATE_TRAINING_FILE]
    shown = client.get(r.headers["Location"], headers=auth).get_json()
    assert shown["status"] == "validating"


def test_the_task_makes_a_valid_file_ready_with_statistics_and_the_preview_the_console_shows(
        client, auth, small_sample):
    file_id = _post(client, auth, small_sample, "sample.json").get_json()["id"]
    _work()
    body = client.get(f"/api/training-files/{file_id}", headers=auth).get_json()
    assert body["status"] == "ready" and body["format"] == "brightrun-lora-v4"
    stats = body["statistics"]
    assert (stats["conversations"], stats["pairs"], stats["trainable_pairs"]) == (8, 25, 23)
    assert body["validated_at"] and body["problems"] is None
    preview = db.session.get(TrainingFile, file_id).preview
    assert [p["conversation_id"] for p in preview] == ["conv-001", "conv-002", "conv-003"]
    assert any(preview[0]["trained"]) and preview[0]["messages"][0]["role"] in ("system", "user")


def test_the_task_makes_a_broken_file_invalid_with_every_problem_and_its_place(client, auth, sample_doc):
    data = _broken(sample_doc)
    file_id = _post(client, auth, data, "broken.json").get_json()["id"]
    _work()
    body = client.get(f"/api/training-files/{file_id}", headers=auth).get_json()
    assert body["status"] == "invalid" and body["statistics"] is None and body["validated_at"]
    with pytest.raises(DatasetError) as parsed:
        parse_bytes(data, name="broken.json")
    assert body["problems"] == [p.to_dict() for p in parsed.value.problems]     # as the 422 gave
    places = " ".join(p["where"] + " " + (p["field"] or "") for p in body["problems"])
    assert "conversation 2" in places and "target_response" in places
    assert "conversation 4" in places and "current_user_input" in places


@pytest.mark.parametrize("data,needle", [(b"", "empty"), (b"{not json", "line 1"),
                                         (b"\xff\xfe\x00garbage", "not UTF-8")])
def test_unreadable_files_end_invalid_naming_what_is_wrong(client, auth, data, needle):
    file_id = _post(client, auth, data, "x.json").get_json()["id"]
    _work()
    body = client.get(f"/api/training-files/{file_id}", headers=auth).get_json()
    assert body["status"] == "invalid"
    assert needle in body["problems"][0]["where"] + ": " + body["problems"][0]["message"]


def test_a_file_with_hundreds_of_problems_keeps_its_total_and_lists_the_first_200(client, auth, sample_doc):
    copies = [json.loads(json.dumps(c)) for _ in range(4) for c in sample_doc["conversations"]]
    for n, c in enumerate(copies):
        c["conversation_metadata"]["conversation_id"] = f"c-{n}"
        for k, p in enumerate(c["training_pairs"]):
            p["id"] = f"c-{n}-t{k}"
    sample_doc["conversations"] = copies
    pairs = [p for c in sample_doc["conversations"] for p in c["training_pairs"]]
    for p in pairs:
        p["target_response"] = 1
        p["current_user_input"] = 2
    with validating_in_background(client.application):
        r = _post(client, auth, json.dumps(sample_doc).encode(), query="?wait=true")
    err = r.get_json()["error"]
    assert r.status_code == 422
    assert err["message"].startswith(f"{2 * len(pairs)} problems:")
    assert len(err["details"]) == 200


def test_an_upload_over_the_size_limit_is_refused_before_anything_is_stored(app, client, auth, small_sample):
    app.config["DATASET_MAX_BYTES"] = 1000
    r = _post(client, auth, small_sample)
    assert r.status_code in (413, 422), r.get_json()           # the request's cap, or the copy's
    assert "1" in r.get_json()["error"]["message"]
    with pytest.raises(DatasetError, match="1,000-byte limit"):   # the copy to storage counts too
        training_files.create(db.session.get(User, db.session.query(User.id).scalar()),
                              io.BytesIO(small_sample), "big.json")
    assert db.session.query(TrainingFile).count() == 0
    assert get_storage().list("training-files") == []
    assert get_queue().count == 0


def test_the_same_file_uploaded_twice_gives_two_ready_files(client, auth, small_sample):
    ids = [_post(client, auth, small_sample).get_json()["id"] for _ in range(2)]
    _work()
    rows = [db.session.get(TrainingFile, i) for i in ids]
    assert ids[0] != ids[1] and [r.status for r in rows] == ["ready", "ready"]
    assert rows[0].sha256 == rows[1].sha256 and rows[0].storage_key != rows[1].storage_key


# ---------------------------------------------------------------------------- ?wait=true

def test_wait_true_answers_201_or_422_as_before_while_a_worker_process_runs(app, client, auth, small_sample,
                                                                          sample_doc, tmp_path):
    worker = RQWorkerProcess(app, tmp_path / "worker-data", tmp_path / "worker.log").start()
    try:
        r = _post(client, auth, small_sample, "sample.json", query="?wait=true")
        assert r.status_code == 201, (r.get_json(), worker.tail())
        assert r.get_json()["statistics"]["trainable_pairs"] == 23
        assert r.headers["Location"].endswith(r.get_json()["id"])
        r = _post(client, auth, _broken(sample_doc), "broken.json", query="?wait=true")
        err = r.get_json()["error"]
        assert r.status_code == 422, worker.tail()
        assert err["code"] == "dataset_format" and err["message"].startswith("2 problems: conversation 2")
        assert len(err["details"]) == 2 and err["details"][0]["field"].endswith("target_response")
    finally:
        worker.stop()
    assert db.session.query(TrainingFile).count() == 1          # the broken one is not kept
    assert len(get_storage().list("training-files")) == 1


def test_wait_true_still_answers_202_when_the_wait_runs_out(app, client, auth, small_sample):
    app.config["UPLOAD_WAIT_SECONDS"] = 0.5
    started = time.monotonic()
    r = _post(client, auth, small_sample, query="?wait=true")           # no worker runs
    assert r.status_code == 202 and r.get_json()["status"] == "validating"
    assert 0.5 <= time.monotonic() - started < 5


@pytest.mark.parametrize("value", ["maybe", "2", "tru"])
def test_wait_must_be_true_or_false_and_a_bad_value_stores_nothing(client, auth, small_sample, value):
    r = _post(client, auth, small_sample, query=f"?wait={value}")
    assert r.status_code == 400 and r.get_json()["error"]["field"] == "wait"
    assert db.session.query(TrainingFile).count() == 0


# ---------------------------------------------------------------------------- reads never parse

def _console_upload(console, data: bytes, name: str) -> str:
    console.get("/files")
    r = console.post("/files", {"file": (io.BytesIO(data), name)}, content_type="multipart/form-data")
    assert r.status_code == 302, r.get_data(as_text=True)
    return r.headers["Location"].rsplit("/", 1)[1]


def test_the_file_pages_and_reads_never_parse_the_dataset(monkeypatch, console, client, small_sample, sample_doc):
    from control.models import ApiToken
    ready = _console_upload(console, small_sample, "sample.json")
    invalid = _console_upload(console, _broken(sample_doc), "broken.json")
    _work()
    waiting = _console_upload(console, small_sample, "waiting.json")
    token, plain = ApiToken.issue(db.session.query(User).filter_by(email="ana@example.com").one())
    db.session.add(token)
    db.session.commit()
    auth = {"Authorization": f"Bearer {plain}"}

    def parse_again(*_args, **_kwargs):
        raise AssertionError("a read parsed the dataset again")
    for target in ("shared.dataset.parse_bytes", "shared.dataset.loading.parse_bytes",
                   "control.services.training_files.parse_bytes", "shared.dataset.describe",
                   "control.services.training_files.describe"):
        monkeypatch.setattr(target, parse_again)
    monkeypatch.setattr(type(get_storage()), "get_bytes", parse_again)

    page = console.get(f"/files/{ready}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and html.count('class="conversation"') == 3 and "Folding saves" in html
    html = console.get(f"/files/{invalid}").get_data(as_text=True)
    assert "broken.json is invalid: 2 problems" in html and "target_response" in html
    html = console.get(f"/files/{waiting}").get_data(as_text=True)
    assert 'id="file-validating"' in html and "New job with this file" not in html
    assert console.get(f"/files/{waiting}/status.json").get_json() == {
        "id": waiting, "status": "validating", "final": False}
    listing = console.get("/files").get_data(as_text=True)
    assert "invalid" in listing and "validating" in listing and "2 problems" in listing
    assert console.get("/jobs/new").status_code == 200
    assert [f["status"] for f in client.get("/api/training-files", headers=auth).get_json()["data"]] == [
        "validating", "invalid", "ready"]
    assert client.get(f"/api/training-files/{invalid}", headers=auth).get_json()["problems"][0]["where"]


def test_the_file_page_follows_the_validation_to_its_result(console, small_sample):
    file_id = _console_upload(console, small_sample, "sample.json")
    page = console.get(f"/files/{file_id}").get_data(as_text=True)
    assert "being validated" in page and 'id="file-validating"' in page
    status_url = f"/files/{file_id}/status.json"
    assert console.get(status_url).get_json()["final"] is False
    _work()
    assert console.get(status_url).get_json()["final"] is True
    page = console.get(f"/files/{file_id}").get_data(as_text=True)
    assert 'id="file-stats"' in page and "New job with this file" in page


# ---------------------------------------------------------------------------- only ready files train

def test_a_job_or_an_estimate_on_a_validating_or_invalid_file_is_a_409_naming_its_status(
        client, auth, small_sample, sample_doc):
    validating = _post(client, auth, small_sample).get_json()["id"]
    r = _job(client, auth, validating)
    assert r.status_code == 409, r.get_json()
    assert r.get_json()["error"]["code"] == "training_file_not_ready"
    assert "is validating" in r.get_json()["error"]["message"]
    r = client.get(f"/api/training/cost-estimate?training_file_id={validating}", headers=auth)
    assert r.status_code == 409 and "is validating" in r.get_json()["error"]["message"]
    invalid = _post(client, auth, _broken(sample_doc)).get_json()["id"]
    _work()
    r = _job(client, auth, invalid)
    assert r.status_code == 409 and "is invalid" in r.get_json()["error"]["message"]
    assert "2 problems" in r.get_json()["error"]["message"]
    r = client.get(f"/api/training/cost-estimate?training_file_id={invalid}", headers=auth)
    assert r.status_code == 409
    assert db.session.query(TrainingJob).count() == 0
    assert _job(client, auth, validating).status_code == 201            # ready now


def test_another_users_file_is_a_404_whatever_its_status(client, auth, make_user, small_sample):
    file_id = _post(client, auth, small_sample).get_json()["id"]
    _, mallory = make_user("mallory@example.com")
    r = _job(client, mallory, file_id)
    assert r.status_code == 404 and "validating" not in r.get_json()["error"]["message"]
    assert client.get(f"/api/training-files/{file_id}", headers=mallory).status_code == 404
    assert client.delete(f"/api/training-files/{file_id}", headers=mallory).status_code == 404


def test_the_console_refuses_a_job_on_a_file_that_is_not_ready(console, small_sample):
    file_id = _console_upload(console, small_sample, "sample.json")
    est = console.get(f"/jobs/estimate.json?training_file_id={file_id}&preset=balanced&pricing=spot"
                      "&gpu_type=H100_PCIE")
    assert est.status_code == 400 and "is validating" in est.get_json()["errors"]["training_file_id"]
    console.get("/jobs/new")
    r = console.post("/jobs", {"training_file_id": file_id, "preset": "balanced", "pricing": "spot",
                               "gpu_type": "H100_PCIE", "name": "too soon", "action": "save"})
    assert r.status_code in (302, 400)
    assert db.session.query(TrainingJob).count() == 0


# ---------------------------------------------------------------------------- lost tasks, deletes, twice

def test_a_validation_whose_task_was_lost_is_picked_up_by_the_sweep(app, client, auth, small_sample):
    from control.services.recovery import sweep_quiet_s
    from control.services.sweep import sweep

    lost = _post(client, auth, small_sample).get_json()["id"]
    recent = _post(client, auth, small_sample).get_json()["id"]
    get_queue().empty()                                       # the worker died: both tasks are gone
    row = db.session.get(TrainingFile, lost)
    row.created_at -= timedelta(seconds=sweep_quiet_s(app.config) + 1)
    db.session.commit()
    assert sweep()["validations"] == 1                        # the recent one may still be queued
    assert [j.args for j in get_queue().get_jobs()] == [(lost,)]
    _work()
    assert db.session.get(TrainingFile, lost).status == "ready"
    assert db.session.get(TrainingFile, recent).status == "validating"


def test_a_file_is_validated_by_one_task_at_a_time_and_once(app, client, auth, small_sample):
    file_id = _post(client, auth, small_sample).get_json()["id"]
    lock = f"{app.config['QUEUE_NAME']}:validating:{file_id}"
    redis_connection().set(lock, "1", ex=30)                 # another worker has it in hand
    assert training_files.validate(file_id) == "validating"
    assert db.session.get(TrainingFile, file_id).status == "validating"
    redis_connection().delete(lock)
    assert training_files.validate(file_id) == "ready"
    first = db.session.get(TrainingFile, file_id).validated_at
    assert training_files.validate(file_id) == "ready"       # a re-queued duplicate does nothing
    db.session.expire_all()
    assert db.session.get(TrainingFile, file_id).validated_at == first
    assert not redis_connection().exists(lock)


def test_a_file_can_be_deleted_in_every_status_and_a_late_task_then_does_nothing(client, auth, small_sample,
                                                                                 sample_doc):
    validating = _post(client, auth, small_sample).get_json()["id"]
    assert client.delete(f"/api/training-files/{validating}", headers=auth).status_code == 204
    _work()                                                   # its task runs after the delete
    assert db.session.get(TrainingFile, validating) is None
    invalid = _post(client, auth, _broken(sample_doc)).get_json()["id"]
    ready = _post(client, auth, small_sample).get_json()["id"]
    _work()
    for file_id in (invalid, ready):
        assert client.delete(f"/api/training-files/{file_id}", headers=auth).status_code == 204
    assert get_storage().list("training-files") == []
    assert client.get("/api/training-files", headers=auth).get_json()["data"] == []


def test_a_file_whose_validation_fails_every_time_ends_invalid_after_its_tries(app, client, auth, small_sample):
    from control.services import training_files
    from control.services.storage import get_storage
    from shared.errors import StorageError

    body = client.post("/api/training-files", headers=auth, data={"file": (io.BytesIO(small_sample), "gone.json")},
                       content_type="multipart/form-data").get_json()
    row = db.session.get(TrainingFile, body["id"])
    get_storage().delete(row.storage_key)                         # its bytes are gone: every try fails
    for _ in range(training_files.MAX_VALIDATION_TRIES):
        with pytest.raises(StorageError):
            training_files.validate(row.id)
    assert training_files.validate(row.id) == "invalid"           # the sweep's next task gives up
    shown = client.get(f"/api/training-files/{row.id}", headers=auth).get_json()
    assert shown["status"] == "invalid" and "could not be validated" in shown["problems"][0]["message"]
