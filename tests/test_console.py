"""The web console through Flask's test client, on Postgres and SQLite: sign-in, CSRF,
who sees what, escaping, and the forms. The browser tests (tests/browser/) drive the same
pages in Chromium against the whole running system."""
from __future__ import annotations

import io
import json
import re
from datetime import timedelta

import pytest

from control.extensions import db
from control.console import job_form
from control.models import TrainingJob, User
from tests.validation_tasks import run_validations

PASSWORD = "correct-horse-battery"       # make_person's default
XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def _token(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


class Console:
    """A browser-like client: a session cookie, and the CSRF token of the last page.

    Each request runs in an app context of its own, as in a server: the tests' fixture
    holds one open, and Flask would otherwise share its ``g`` across requests."""

    def __init__(self, app):
        self.app = app
        self.client = _FreshContextClient(app.test_client(), app)
        self.csrf = None

    def get(self, url, **kw):
        r = self.client.get(url, **kw)
        if r.mimetype == "text/html" and 'name="csrf_token"' in r.get_data(as_text=True):
            self.csrf = _token(r.get_data(as_text=True))
        return r

    def post(self, url, data=None, csrf=True, **kw):
        data = dict(data or {})
        if csrf:
            data.setdefault("csrf_token", self.csrf or _token(self.client.get("/login").get_data(as_text=True)))
        return self.client.post(url, data=data, **kw)

    def login(self, email, password=PASSWORD):
        self.get("/login")
        r = self.post("/login", {"email": email, "password": password})
        assert r.status_code == 302, r.get_data(as_text=True)
        self.get("/jobs")
        return self


class _FreshContextClient:
    def __init__(self, client, app):
        self._client, self._app = client, app

    def __getattr__(self, name):
        method = getattr(self._client, name)
        if name not in ("get", "post", "open"):
            return method

        def call(*args, **kw):
            with self._app.app_context():
                return method(*args, **kw)
        return call


@pytest.fixture
def console(app, make_person):
    make_person()
    return Console(app).login("ana@example.com")


def _upload(console, data: bytes, name="sample.json"):
    """Upload through the form, then run its validation task (as a worker would)."""
    console.get("/files")
    r = console.post("/files", {"file": (io.BytesIO(data), name)}, content_type="multipart/form-data")
    run_validations(console.app)
    return r


@pytest.fixture
def file_id(console, small_sample):
    r = _upload(console, small_sample)
    assert r.status_code == 302, r.get_data(as_text=True)
    return r.headers["Location"].rsplit("/", 1)[1]


def _job_form(file_id, **over):
    form = {"training_file_id": file_id, "preset": "balanced", "pricing": "spot", "gpu_type": "H100_PCIE",
            "name": "first run", "tags": "anxious, v1", "max_steps": "3", "batch_size": "2"}
    form.update(over)
    return form


def _create(console, file_id, action="save", **over):
    console.get("/jobs/new")
    r = console.post("/jobs", {**_job_form(file_id, **over), "action": action})
    assert r.status_code == 302, r.get_data(as_text=True)
    return r.headers["Location"].rsplit("/", 1)[1]


# ---------------------------------------------------------------------------- sign-in

def test_every_console_page_and_download_needs_a_signed_in_user(app, console, file_id):
    job_id = _create(console, file_id)
    anonymous = Console(app)
    values = {"job_id": job_id, "file_id": file_id, "fmt": "csv", "filename": "console.css", "user_id": "usr_x",
              "template_id": "tpl_x"}
    checked = 0
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("console.") or rule.endpoint in (
                "console.login", "console.static", "console.set_password"):     # the last: its token is the proof
            continue
        url = rule.build(values)[1]
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            anonymous.get("/login")                       # a valid CSRF token, but nobody signed in
            r = anonymous.get(url) if method == "GET" else anonymous.post(url, {})
            assert r.status_code == 302 and "/login" in r.headers["Location"], (method, url, r.status_code)
            checked += 1
    assert checked >= 20
    assert anonymous.get("/console-static/console.css").status_code == 200   # assets are public


def test_a_wrong_password_is_refused_without_saying_which_part_was_wrong(app, make_person):
    make_person()
    c = Console(app)
    c.get("/login")
    for email, password in (("ana@example.com", "wrong-password"), ("nobody@example.com", PASSWORD)):
        r = c.post("/login", {"email": email, "password": password})
        assert r.status_code == 401 and "Wrong email or password" in r.get_data(as_text=True)
    assert c.get("/jobs").status_code == 302


def test_repeated_failed_sign_ins_make_that_email_wait(app, make_person):
    from control.services.sign_in_throttle import FREE_FAILURES
    make_person()
    c = Console(app)
    c.get("/login")
    for _ in range(FREE_FAILURES + 1):        # from this address (tests/test_credentials.py: others)
        assert c.post("/login", {"email": "ana@example.com", "password": "guess"}).status_code == 401
    r = c.post("/login", {"email": "ana@example.com", "password": PASSWORD})
    assert r.status_code == 429 and "Too many failed sign-ins" in r.get_data(as_text=True)
    make_person("bo@example.com")
    assert c.post("/login", {"email": "bo@example.com", "password": PASSWORD}).status_code == 302


def test_sign_in_returns_to_the_page_asked_for_but_never_to_another_site(app, make_person):
    make_person()
    c = Console(app)
    r = c.get("/files?x=1")
    from urllib.parse import parse_qs, urlsplit
    where = urlsplit(r.headers["Location"])
    assert where.path == "/login" and parse_qs(where.query) == {"next": ["/files?x=1"]}
    c.get("/login")
    r = c.post("/login", {"email": "ana@example.com", "password": PASSWORD, "next": "/files?x=1"})
    assert r.headers["Location"] == "/files?x=1"
    for evil in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
        c2 = Console(app)
        c2.get("/login")
        r = c2.post("/login", {"email": "ana@example.com", "password": PASSWORD, "next": evil})
        assert r.headers["Location"] == "/jobs", evil


def test_changing_the_password_signs_out_other_sessions(app, console):
    assert console.get("/jobs").status_code == 200
    from control.services import accounts
    user = db.session.scalar(db.select(User).where(User.email == "ana@example.com"))
    accounts.set_password(user, "a-brand-new-password")
    assert console.get("/jobs").status_code == 302


def test_sign_out_ends_the_session(console):
    r = console.post("/logout")
    assert r.status_code == 302
    assert console.get("/jobs").status_code == 302


def test_the_cli_sets_console_passwords(app, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from control.cli import main
    monkeypatch.setenv("DATABASE_URL", app.config["SQLALCHEMY_DATABASE_URI"])
    runner = CliRunner()
    r = runner.invoke(main, ["users", "create", "bo@example.com", "--password"],
                      env={"BRIGHTRUN_PASSWORD": "long-enough-pw"})
    assert r.exit_code == 0, r.output
    r = runner.invoke(main, ["users", "set-password", "bo@example.com"], input="short\nshort\n")
    assert r.exit_code != 0 and "at least 10 characters" in r.output
    r = runner.invoke(main, ["users", "set-password", "bo@example.com"], input="another-long-pw\nanother-long-pw\n")
    assert r.exit_code == 0, r.output
    db.session.expire_all()
    user = db.session.scalar(db.select(User).where(User.email == "bo@example.com"))
    assert user.check_password("another-long-pw") and not user.check_password("long-enough-pw")


# ---------------------------------------------------------------------------- CSRF

@pytest.mark.parametrize("token", [None, "forged-token"])
def test_forms_without_a_valid_csrf_token_are_refused_and_change_nothing(app, console, file_id, token):
    job_id = _create(console, file_id, action="start")
    data = {} if token is None else {"csrf_token": token}
    before = db.session.query(TrainingJob).count()
    posts = [
        ("/jobs", {**_job_form(file_id), "action": "start", **data}),
        (f"/jobs/{job_id}/cancel", data),
        (f"/jobs/{job_id}/delete", data),
        ("/files", {**data, "file": (io.BytesIO(b"{}"), "x.json")}),
        ("/logout", data),
        ("/login", {"email": "ana@example.com", "password": PASSWORD, **data}),
    ]
    for url, body in posts:
        r = console.client.post(url, data=body)
        assert r.status_code == 400, url
        assert "This form has expired" in r.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.query(TrainingJob).count() == before
    assert db.session.get(TrainingJob, job_id).status == "queued"
    assert console.get("/jobs").status_code == 200                 # still signed in


def test_the_json_api_needs_no_csrf_token_but_its_bearer_token(client, auth, small_sample):
    r = client.post("/api/training-files", headers=auth, data={"file": (io.BytesIO(small_sample), "s.json")},
                    content_type="multipart/form-data")
    assert r.status_code == 202                      # stored; its validation is queued
    r = client.post("/api/training-files", data={"file": (io.BytesIO(small_sample), "s.json")},
                    content_type="multipart/form-data")
    assert r.status_code == 401


# ---------------------------------------------------------------------------- ownership

def test_one_user_cannot_see_or_act_on_another_users_job_or_file(app, console, file_id, make_person):
    job_id = _create(console, file_id, name="ana's secret run")
    make_person("bo@example.com")
    bo = Console(app).login("bo@example.com")
    for url in (f"/jobs/{job_id}", f"/jobs/{job_id}/live.json", f"/jobs/{job_id}/events.json",
                f"/jobs/{job_id}/cancel", f"/jobs/{job_id}/delete", f"/jobs/{job_id}/download/adapter",
                f"/jobs/{job_id}/download/metrics.csv", f"/jobs/new?from={job_id}",
                f"/files/{file_id}", f"/jobs/new?file={file_id}"):
        assert bo.get(url).status_code == 404, url
    for url in (f"/jobs/{job_id}/cancel", f"/jobs/{job_id}/delete", f"/jobs/{job_id}/start"):
        assert bo.post(url).status_code == 404, url
    assert bo.get(f"/jobs/live.json?ids={job_id}").get_json() == {"jobs": []}
    assert "ana&#39;s secret run" not in bo.get("/jobs").get_data(as_text=True)
    assert "sample.json" not in bo.get("/files").get_data(as_text=True)
    r = bo.post("/jobs/review", _job_form(file_id))
    assert r.status_code == 404
    db.session.expire_all()
    assert db.session.get(TrainingJob, job_id).status == "pending"


def test_an_admin_sees_everyones_jobs_and_filters_them_by_creator(app, console, file_id, make_person):
    _create(console, file_id, name="ana run")
    make_person("root@example.com", role="admin")
    admin = Console(app).login("root@example.com")
    page = admin.get("/jobs").get_data(as_text=True)
    assert "ana run" in page and "ana@example.com" in page
    assert "ana run" not in admin.get("/jobs?creator=root@example.com").get_data(as_text=True)
    assert "ana run" in admin.get("/jobs?creator=ana@example.com").get_data(as_text=True)


# ---------------------------------------------------------------------------- escaping

def test_user_text_is_escaped_on_every_page_that_shows_it(app, console, sample_doc):
    sample_doc["conversations"][0]["training_pairs"][0]["current_user_input"] = "help " + XSS
    r = _upload(console, json.dumps(sample_doc).encode(), name="data.json")
    file_id = r.headers["Location"].rsplit("/", 1)[1]
    form = _job_form(file_id, name="run " + XSS, tags="t" + XSS[:20])
    form.update(notes="notes " + XSS, description="desc " + XSS)
    console.get("/jobs/new")
    review = console.post("/jobs/review", form).get_data(as_text=True)
    job_id = _create(console, file_id, **{k: v for k, v in form.items() if k != "training_file_id"})
    pages = {"review": review,
             "detail": console.get(f"/jobs/{job_id}").get_data(as_text=True),
             "list": console.get("/jobs").get_data(as_text=True),
             "file": console.get(f"/files/{file_id}").get_data(as_text=True),
             "retry": console.get(f"/jobs/new?from={job_id}").get_data(as_text=True),
             "cancel": console.get(f"/jobs/{job_id}/cancel").get_data(as_text=True)}
    for name, html in pages.items():
        assert "<script>alert" not in html and "<img src=x" not in html, name
        assert "&lt;script&gt;alert" in html or "&lt;img src=x" in html or name == "cancel", name
    assert "help &lt;script&gt;" in pages["file"]                    # the dataset preview
    assert "notes &lt;script&gt;" in pages["detail"]
    live = console.get(f"/jobs/live.json?ids={job_id}").get_json()
    assert live["jobs"][0]["id"] == job_id


# ---------------------------------------------------------------------------- training files

def test_a_broken_upload_lists_every_problem_with_its_place_and_cannot_be_used(console, sample_doc):
    del sample_doc["conversations"][1]["training_pairs"][0]["target_response"]
    sample_doc["conversations"][3]["training_pairs"][1]["current_user_input"] = 7
    r = _upload(console, json.dumps(sample_doc).encode(), name="broken.json")
    assert r.status_code == 302                      # stored, validated by its task
    html = console.get(r.headers["Location"]).get_data(as_text=True)
    assert "broken.json is invalid: 2 problems" in html
    assert "conversation 2" in html and "target_response" in html
    assert "conversation 4" in html and "current_user_input" in html
    assert "New job with this file" not in html


def test_an_upload_shows_the_files_statistics_and_a_preview(console, small_sample):
    r = _upload(console, small_sample)
    html = console.get(r.headers["Location"]).get_data(as_text=True)
    assert "Folding saves" in html and "Quality scores" in html and "Scaffolding" in html
    assert html.count('class="conversation"') == 3
    files = console.get("/files").get_data(as_text=True)
    assert "sample.json" in files


def test_an_upload_without_a_file_says_what_to_do(console):
    console.get("/files")
    r = console.post("/files", {})
    assert r.status_code == 400 and "Choose a dataset file" in r.get_data(as_text=True)


# ---------------------------------------------------------------------------- new job

def test_the_new_job_form_creates_the_same_job_the_api_would(console, file_id):
    job_id = _create(console, file_id, action="save", learning_rate="0.0005", description="d", notes="n")
    job = db.session.get(TrainingJob, job_id)
    assert job.status == "pending" and job.tags == ["anxious", "v1"]
    assert job.configuration["overrides"] == {"batch_size": 2, "learning_rate": 0.0005, "max_steps": 3}
    assert job.configuration["hyperparameters"]["lora_r"] == 16            # the preset's, kept
    assert (job.gpu_type, job.gpu_pricing_tier, job.description, job.notes) == ("H100_PCIE", "spot", "d", "n")


def test_bad_settings_come_back_marked_on_the_form_with_the_values_kept(console, file_id):
    console.get("/jobs/new")
    r = console.post("/jobs/review", _job_form(file_id, batch_size="two", lora_dropout="1.5",
                                               name="keep me"))
    html = r.get_data(as_text=True)
    assert r.status_code == 400
    assert 'id="batch_size-error"' in html and "valid integer" in html
    assert 'id="lora_dropout-error"' in html
    assert 'value="keep me"' in html
    r = console.post("/jobs/review", _job_form(file_id, gpu_type="TPU"))
    assert r.status_code == 400 and "unknown GPU type" in r.get_data(as_text=True)
    r = console.post("/jobs/review", _job_form(""))
    assert r.status_code == 400 and "choose a training file" in r.get_data(as_text=True)


def test_the_review_shows_what_differs_from_the_preset_and_the_estimate(console, file_id):
    console.get("/jobs/new")
    html = console.post("/jobs/review", _job_form(file_id)).get_data(as_text=True)
    assert "batch_size: 4 → 2" in html and "max_steps: unset → 3" in html
    assert "Start training" in html and "$" in html


def test_the_estimate_follows_the_choices_and_warns_above_the_threshold(console, file_id, monkeypatch):
    base = f"/jobs/estimate.json?training_file_id={file_id}&preset=balanced&gpu_type=H100_PCIE"
    spot = console.get(base + "&pricing=spot").get_json()
    on_demand = console.get(base + "&pricing=on_demand").get_json()
    assert set(spot["presets"]) == {"conservative", "balanced", "aggressive"}
    assert on_demand["estimate"]["cost_usd"] > spot["estimate"]["cost_usd"]
    assert spot["warning"] is None
    from control.console import new_job as console_jobs
    assert console_jobs.COST_WARNING_USD == 100.0                 # the product's threshold
    monkeypatch.setattr(console_jobs, "COST_WARNING_USD", 1.0)    # the 8-conversation sample costs less
    big = console.get(base + "&pricing=on_demand&num_epochs=100&base_model=meta-llama/Meta-Llama-3-70B-Instruct"
                      "&method=qlora").get_json()
    assert big["estimate"]["cost_usd"] > 1 and "above $1.00" in big["warning"]
    assert console.get(base + "&pricing=spot").get_json()["warning"] is None
    bad = console.get(base + "&batch_size=0")
    assert bad.status_code == 400 and "batch_size" in bad.get_json()["errors"]


def test_retry_prefills_the_form_from_the_old_job(console, file_id):
    job_id = _create(console, file_id, learning_rate="0.0005", notes="why")
    html = console.get(f"/jobs/new?from={job_id}").get_data(as_text=True)
    assert 'value="first run (retry)"' in html
    assert 'name="learning_rate" step="any" min="0" value="0.0005"' in html
    assert 'name="batch_size" step="1" min="0" value="2"' in html
    assert ">why</textarea>" in html


# ---------------------------------------------------------------------------- jobs list and job page

def test_the_jobs_list_filters_by_status_date_and_text_and_sorts(console, file_id):
    a = _create(console, file_id, name="alpha")
    b = _create(console, file_id, name="beta", action="start")
    job_a = db.session.get(TrainingJob, a)
    job_a.created_at = job_a.created_at - timedelta(days=3)
    db.session.commit()
    day = job_a.created_at.date().isoformat()

    def names(query):
        html = console.get("/jobs" + query).get_data(as_text=True)
        return re.findall(r'<a href="/jobs/tj_[0-9a-f]+">([^<]+)</a>', html)

    assert names("") == ["beta", "alpha"]
    assert names("?sort=oldest") == ["alpha", "beta"]
    assert names("?status=queued") == ["beta"]
    assert names("?status=pending&status=queued&sort=name") == ["alpha", "beta"]
    assert names(f"?from={day}&to={day}") == ["alpha"]
    assert names("?q=alp") == ["alpha"]
    assert "No job matches these filters" in console.get("/jobs?q=zzz").get_data(as_text=True)
    assert "is not a date" in console.get("/jobs?from=yesterday").get_data(as_text=True)
    assert f'href="/jobs/{b}"' in console.get("/jobs?status=queued").get_data(as_text=True)


def test_the_job_page_shows_progress_curves_events_and_evaluation(app, console, file_id):
    """Progress fed through the monitor's own ingestion shows on the page and its live view."""
    from control.models import JobAttempt
    from control.services.ingest import ingest
    from shared.events import EventStream

    job_id = _create(console, file_id)
    job = db.session.get(TrainingJob, job_id)
    attempt = JobAttempt(job=job, number=1, runpod_job_id="rp-1")
    db.session.add(attempt)
    job.status = "provisioning"
    db.session.commit()
    s = EventStream(job_id, 1)
    ingest(job, attempt, [s.make("stage", stage="preprocessing"), s.make("stage", stage="model_loading"),
                          s.make("stage", stage="training"),
                          s.make("metrics", step=1, total_steps=3, epoch=0.3, loss=2.5, lr=1e-4)])
    html = console.get(f"/jobs/{job_id}").get_data(as_text=True)
    assert 'data-stage="training" data-state="current"' in html
    assert 'data-stage="preprocessing" data-state="done"' in html
    assert "step 1 of 3" in html and 'data-points="1"' in html
    live = console.get(f"/jobs/{job_id}/live.json?since_step=1&after_id=0").get_json()
    assert live["points"] == [] and len(live["events"]) == 4 and live["job"]["step"] == 1
    after = live["after_id"]
    ingest(job, attempt, [s.make("metrics", step=2, total_steps=3, epoch=0.6, loss=2.1, lr=9e-5),
                          s.make("warning", code="slow", message="slow <b>disk</b>")])
    live = console.get(f"/jobs/{job_id}/live.json?since_step=1&after_id={after}").get_json()
    assert [p["step"] for p in live["points"]] == [2]
    assert [e["type"] for e in live["events"]] == ["metrics", "warning"]
    only = console.get(f"/jobs/{job_id}/live.json?after_id=0&event_type=warning").get_json()
    assert [e["text"] for e in only["events"]] == ["slow: slow <b>disk</b>"]   # text; the page escapes it
    html = console.get(f"/jobs/{job_id}?event_q=DISK").get_data(as_text=True)
    assert "slow &lt;b&gt;disk&lt;/b&gt;" in html and "step 2 of 3 · epoch" not in html
    export = console.get(f"/jobs/{job_id}/events.json?event_type=metrics")
    body = json.loads(export.get_data(as_text=True))
    assert export.headers["Content-Disposition"].endswith(f'{job_id}-events.json"')
    assert [e["type"] for e in body["events"]] == ["metrics", "metrics"] and body["job"]["id"] == job_id
    ingest(job, attempt, [s.make("metrics", step=3, total_steps=3, epoch=1.0, loss=1.9, lr=0.0),
                          s.make("stage", stage="evaluating"),
                          s.make("evaluation", conversations=2, targets=4, tokens=300,
                                 base={"loss": 3.0, "perplexity": 20.0}, trained={"loss": 2.5, "perplexity": 12.2},
                                 improvement_pct=39.0),
                          s.make("stage", stage="finalizing"), s.make("completed", summary={})])
    html = console.get(f"/jobs/{job_id}").get_data(as_text=True)
    assert "Perplexity 39.0% better" in html and 'data-state="done"' in html
    assert 'id="retry-job"' in html and 'id="cancel-job"' not in html
    csv_text = console.get(f"/jobs/{job_id}/download/metrics.csv").get_data(as_text=True)
    assert len(csv_text.splitlines()) == 4


def test_cancel_asks_first_then_cancels_a_job_not_yet_dispatched(console, file_id):
    job_id = _create(console, file_id, action="start")
    page = console.get(f"/jobs/{job_id}/cancel").get_data(as_text=True)
    assert "Yes, cancel it" in page
    db.session.expire_all()
    assert db.session.get(TrainingJob, job_id).status == "queued"
    r = console.post(f"/jobs/{job_id}/cancel")
    assert r.status_code == 302
    db.session.expire_all()
    assert db.session.get(TrainingJob, job_id).status == "cancelled"
    again = console.post(f"/jobs/{job_id}/cancel", follow_redirects=True)
    assert "it has already ended" in again.get_data(as_text=True)


def test_a_missing_job_gets_a_page_that_says_what_to_do(console):
    r = console.get("/jobs/tj_missing")
    assert r.status_code == 404 and "What to do" in r.get_data(as_text=True)
    r = console.get("/no/such/page")
    assert r.status_code == 404 and r.mimetype == "text/html"
    assert console.client.get("/api/no/such").get_json()["error"]["code"] == "not_found"


def test_the_job_page_shows_interruptions_the_error_explained_and_the_retry_with_the_fix(
        app, console, file_id):
    """A job that was interrupted twice and then ran out of memory: the page says so, the
    retry applies the fix, and the review lists the change against the failed job."""
    from control.models import JobAttempt
    from control.services.lifecycle import fail, record_interruption
    from shared.failures import classify_text, out_of_memory

    job_id = _create(console, file_id, batch_size="4")
    job = db.session.get(TrainingJob, job_id)
    for number, (step, ckpt) in enumerate(((12, 10), (27, 25)), start=1):
        attempt = JobAttempt(job=job, number=number, runpod_job_id=f"rp-{number}")
        db.session.add(attempt)
        job.current_step, job.last_checkpoint_step = step, ckpt
        record_interruption(job, attempt, "lost", classify_text("worker lost: killed by SIGKILL"))
    job.checkpoint_recovery_count = 2
    fail(job, out_of_memory(job.configuration["hyperparameters"], 80, "CUDA out of memory"))
    db.session.commit()

    html = console.get(f"/jobs/{job_id}").get_data(as_text=True)
    assert "Interrupted 2×" in html and html.count("killed by SIGKILL") == 2
    assert "Your dataset + batch_size=4" in html and "Likely cause:" in html
    assert "your settings or data" in html and "batch_size → 2" in html
    bundle = json.loads(console.get(f"/jobs/{job_id}/support-bundle.json").get_data(as_text=True))
    assert bundle["error"]["adjustment"] == {"batch_size": 2, "gradient_accumulation_steps": 8}
    assert [a["steps_lost"] for a in bundle["attempts"]] == [2, 2]

    form = console.get(f"/jobs/new?from={job_id}&adjust=1").get_data(as_text=True)
    assert 'name="batch_size" step="1" min="0" value="2"' in form and "with the fix for out_of_memory" in form
    values = job_form.values_from_job(job, adjust=True)
    review = console.post("/jobs/review", values).get_data(as_text=True)
    assert "batch_size: 4 → 2" in review and "gradient_accumulation_steps: 4 → 8" in review
    r = console.post("/jobs", {**values, "action": "save"})
    new = db.session.get(TrainingJob, r.headers["Location"].rsplit("/", 1)[1])
    assert new.retried_from_id == job_id and new.configuration["hyperparameters"]["batch_size"] == 2
    db.session.expire_all()
    assert db.session.get(TrainingJob, job_id).retry_count == 1


def test_checkpoint_now_is_offered_while_training_and_leaves_a_request_for_the_worker(app, console, file_id):
    from control.services.storage import get_storage
    job_id = _create(console, file_id)
    job = db.session.get(TrainingJob, job_id)
    job.status = job.current_stage = "training"
    db.session.commit()
    assert 'id="checkpoint-now"' in console.get(f"/jobs/{job_id}").get_data(as_text=True)
    r = console.post(f"/jobs/{job_id}/checkpoint", follow_redirects=True)
    assert "Checkpoint requested" in r.get_data(as_text=True)
    db.session.expire_all()
    assert get_storage().exists(db.session.get(TrainingJob, job_id).layout.checkpoint_request)
