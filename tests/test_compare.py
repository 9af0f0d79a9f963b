"""Comparing 2 to 4 runs, on Postgres and SQLite: ``GET /api/training/jobs/compare`` (and its
PDF), and the console's ``/jobs/compare`` started from the jobs list's checkboxes.

The runs are finished jobs seeded as rows (``tests/finished_runs.py``: jobs, a metric point a
step, attempts, a completed re-evaluation with its summary), different on purpose: run B
has the best perplexity gain and the lowest losses, run C is the cheapest, fastest and has
the highest throughput, run B was interrupted once."""
from __future__ import annotations

import shutil
import subprocess

import pytest

from control.extensions import db
from control.models import EvaluationRun, ModelArtifact, TrainingJob, User
from control.responses import Comparison
from control.services import comparison
from tests.finished_runs import RUNS, seed_finished_runs, training_file
from shared.errors import ConfigError
from tests.test_console import Console
from tests.test_console_evaluation import _job, _store_evaluation

API = "/api/training/jobs/compare"


@pytest.fixture
def ana(app, make_user):
    user_id, headers = make_user("ana@example.com")
    return db.session.get(User, user_id), headers


@pytest.fixture
def five(app, ana):
    """Runs A to E of one dataset, Ana's."""
    return seed_finished_runs(app, ana[0], n=5)


def _compare(client, headers, ids, **params):
    return client.get(API, headers=headers, query_string={"ids": ",".join(ids), **params})


def _row(body: dict, row_id: str) -> dict:
    return next(r for r in body["rows"] if r["id"] == row_id)


def _best(body: dict, row_id: str) -> list[str]:
    names = {r["id"]: r["name"] for r in body["runs"]}
    return [names[c["job_id"]] for c in _row(body, row_id)["cells"] if c["best"]]


# ---------------------------------------------------------------------- the API
@pytest.mark.parametrize("n", [2, 3, 4])
def test_two_three_or_four_runs_come_back_in_the_order_asked_with_curves_and_a_cell_each(client, ana, five, n):
    ids = list(reversed(five[:n]))
    r = _compare(client, ana[1], ids)
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    Comparison.model_validate(body)              # the shape the OpenAPI document gives
    assert [run["id"] for run in body["runs"]] == ids
    assert [run["name"] for run in body["runs"]] == [RUNS[i][0] for i in reversed(range(n))]
    for run in body["runs"]:
        curves = run["curves"]
        assert len(curves["training_loss"]) == len(curves["learning_rate"]) == 60
        assert [p[0] for p in curves["validation_loss"]] == [10, 20, 30, 40, 50, 60]
        assert run["evaluation_run"].startswith("ev_")
    assert body["rows"] and all([c["job_id"] for c in row["cells"]] == ids for row in body["rows"])
    assert body["same_dataset"] is True and body["notices"] == []


def test_one_or_five_ids_are_refused_naming_the_limit(client, ana, five):
    for ids in (five[:1], five + ["tj_sixth"]):
        r = _compare(client, ana[1], ids[:5])
        assert r.status_code == 400
        error = r.get_json()["error"]
        assert error["field"] == "ids"
        assert "compare 2 to 4 jobs" in error["message"] and f"got {len(ids[:5])}" in error["message"]


def test_an_id_given_twice_is_refused_naming_it(client, ana, five):
    error = _compare(client, ana[1], [five[0], five[1], five[0]]).get_json()["error"]
    assert error["field"] == "ids" and f"{five[0]} is given twice" in error["message"]


def test_an_unknown_id_is_not_found_naming_it(client, ana, five):
    r = _compare(client, ana[1], [five[0], "tj_0000000000000000"])
    assert r.status_code == 404
    assert "tj_0000000000000000" in r.get_json()["error"]["message"]


def test_another_users_job_is_not_found_but_an_admin_compares_it(client, ana, five, make_user):
    raj, raj_headers = make_user("raj@example.com")
    theirs = seed_finished_runs(None, raj, n=1)[0]
    r = _compare(client, ana[1], [five[0], theirs])
    assert r.status_code == 404 and theirs in r.get_json()["error"]["message"]
    _, admin = make_user("ops@example.com", "admin")
    assert _compare(client, admin, [five[0], theirs]).status_code == 200


def test_the_best_of_each_row_is_marked_with_ties_shared_and_equal_rows_unmarked(client, ana, five):
    body = _compare(client, ana[1], five[:3]).get_json()
    better = {r["id"]: r["better"] for r in body["rows"]}
    assert better["final_training_loss"] == better["cost"] == better["duration"] == "lower"
    assert better["perplexity"] == better["tokens_per_second"] == "higher"
    assert _best(body, "perplexity") == ["run B"]
    assert _row(body, "perplexity")["cells"][1]["interval"] == [30.4, 45.0]
    assert _row(body, "perplexity")["cells"][1]["text"] == "38.2% [30.4, 45.0]"
    assert _best(body, "final_training_loss") == _best(body, "final_validation_loss") == ["run B"]
    assert _best(body, "cost") == _best(body, "duration") == _best(body, "tokens_per_second") == ["run C"]
    assert _best(body, "forgetting") == ["run C"]
    assert _best(body, "interruptions") == ["run A", "run C"]          # a tie at 0: both
    assert _best(body, "emotional_intelligence") == []                # nobody has people's scores yet
    assert [c["text"] for c in _row(body, "emotional_intelligence")["cells"]] == ["waiting for people's scores"] * 3
    assert _best(body, "gate") == ["run A"]          # B and C miss a target; A waits for people's scores

    job = db.session.get(TrainingJob, five[2])
    job.delivery_status = "approved"
    db.session.commit()
    assert _best(_compare(client, ana[1], five[:3]).get_json(), "gate") == ["run C"]


def test_the_settings_table_lists_only_the_fields_that_differ(client, ana, five):
    # runs A and E: both balanced, the same learning rate; E has LoRA rank 8
    body = _compare(client, ana[1], [five[0], five[4]]).get_json()
    assert body["config_differences"] == [{"field": "hyperparameters.lora_r", "values": [16, 8]}]
    body = _compare(client, ana[1], five[:3]).get_json()
    fields = {d["field"]: d["values"] for d in body["config_differences"]}
    assert fields["preset"] == ["balanced", "aggressive", "conservative"]
    assert fields["hyperparameters.learning_rate"] == [2e-4, 5e-4, 1e-4]
    assert not {"method", "base_model", "dataset", "hyperparameters.lr_scheduler",
                "hyperparameters.target_modules", "gpu.type"} & set(fields)
    assert not [f for f in fields if f.startswith(("estimate", "overrides", "gpu.endpoint_id"))]


def test_runs_of_different_datasets_compare_with_a_notice_naming_both(client, ana, five):
    other = training_file(ana[0], "northwind-support.json")
    theirs = seed_finished_runs(None, ana[0], n=1, file=other)[0]
    body = _compare(client, ana[1], [five[0], theirs]).get_json()
    assert body["same_dataset"] is False
    assert len(body["notices"]) == 1
    notice = body["notices"][0]
    assert "different datasets" in notice and "harbor-lane-conversations.json" in notice
    assert "northwind-support.json" in notice
    first = db.session.get(TrainingJob, five[0]).training_file_id
    assert {"field": "dataset", "values": [f"harbor-lane-conversations.json ({first})",
                                           f"northwind-support.json ({other.id})"]} in body["config_differences"]


def test_a_running_job_shows_its_cost_so_far_unranked_and_says_so(client, ana, five):
    job = db.session.get(TrainingJob, five[2])       # run C, the cheapest, still training
    job.status, job.completed_at, job.actual_duration_minutes = "training", None, None
    db.session.commit()
    body = _compare(client, ana[1], five[:3]).get_json()
    cost = _row(body, "cost")["cells"]
    assert cost[2]["text"] == "$0.85 so far" and cost[2]["final"] is False
    assert _best(body, "cost") == ["run A"]
    assert any("Not finished: run C" in n for n in body["notices"])


def test_a_job_without_a_re_evaluation_shows_its_training_runs_evaluation(client, ana, five):
    job_id = five[1]
    run = db.session.query(EvaluationRun).filter_by(training_job_id=job_id).one()
    db.session.add(ModelArtifact(training_job_id=job_id, evaluation=run.summary))
    db.session.delete(run)
    db.session.commit()
    body = _compare(client, ana[1], five[:2]).get_json()
    assert body["runs"][1]["evaluation_run"] == "training"
    assert _row(body, "perplexity")["cells"][1]["value"] == 38.2


def test_an_evaluation_in_storage_is_read_as_the_job_page_reads_it(client, ana, five, small_sample):
    job = _job(ana[0], small_sample, completed=True, name="stored evaluation")
    _store_evaluation(job)                  # the handler's summary in storage, the artifact's row
    body = _compare(client, ana[1], [five[0], job.id]).get_json()
    assert body["runs"][1]["evaluation_run"] == "training"
    assert _row(body, "perplexity")["cells"][1]["text"] == "32.5% [18.0, 41.2]"
    assert _row(body, "forgetting")["cells"][1]["value"] == 90.0
    assert _best(body, "forgetting") == ["run A"]


def test_a_job_never_evaluated_has_dashes_and_takes_no_part_in_the_best(client, ana, five):
    db.session.query(EvaluationRun).filter_by(training_job_id=five[1]).delete()
    db.session.commit()
    body = _compare(client, ana[1], five[:3]).get_json()
    assert body["runs"][1]["evaluation_run"] is None
    assert _row(body, "perplexity")["cells"][1]["text"] == "—"
    assert _best(body, "perplexity") == ["run A"]
    assert _row(body, "gate")["cells"][1]["text"] == "not evaluated"


def _pdf_text(pdf: bytes, tmp_path) -> str:
    assert shutil.which("pdftotext"), "pdftotext (poppler-utils) is needed: make browser installs it"
    path = tmp_path / "comparison.pdf"
    path.write_bytes(pdf)
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True,
                          check=True).stdout


class TestThePdf:
    """The PDF is the same on either database: rendered (about 2 s each) on Postgres only."""

    @pytest.fixture(params=["postgres"])
    def app(self, app):
        return app

    @pytest.mark.parametrize("url", [f"{API}.pdf", API])
    def test_the_pdf_names_every_run_and_marks_the_best(self, client, ana, five, tmp_path, url):
        r = client.get(url, headers=ana[1], query_string={"ids": ",".join(five[:3]),
                                                           **({} if url.endswith(".pdf") else {"format": "pdf"})})
        assert r.status_code == 200, r.get_data(as_text=True)[:500]
        assert r.mimetype == "application/pdf" and r.data.startswith(b"%PDF")
        assert "attachment" in r.headers["Content-Disposition"]
        text = _pdf_text(r.data, tmp_path)
        for name in ("run A", "run B", "run C"):
            assert name in text
        assert "Comparison of 3 runs" in text and "★ best" in text
        assert "Perplexity gain" in text and "38.2% [30.4, 45.0]" in text
        assert "hyperparameters.learning_rate" in text

    def test_the_console_exports_the_pdf(self, console, tmp_path):
        browser, person = console
        ids = seed_finished_runs(None, person, n=2)
        r = browser.get("/jobs/compare.pdf", query_string={"ids": ",".join(ids)})
        assert r.status_code == 200 and r.data.startswith(b"%PDF")
        assert "run A" in _pdf_text(r.data, tmp_path)


# ---------------------------------------------------------------------- the console
@pytest.fixture
def console(app, make_person):
    person = make_person("eve@example.com")
    return Console(app).login(person.email), person


def test_the_jobs_list_has_a_checkbox_a_row_and_a_compare_button(console):
    browser, person = console
    ids = seed_finished_runs(None, person, n=3)
    html = browser.get("/jobs").get_data(as_text=True)
    assert 'id="compare-form"' in html and 'action="/jobs/compare"' in html and "Compare selected" in html
    for job_id in ids:
        assert f'name="ids" value="{job_id}" form="compare-form"' in html
    assert "Tick 2 to 4 jobs" in html


def test_the_compare_page_takes_ticked_boxes_and_marks_the_best_cells(console):
    browser, person = console
    ids = seed_finished_runs(None, person, n=3)
    r = browser.get("/jobs/compare", query_string=[("ids", ids[0]), ("ids", ids[1]), ("ids", ids[2])])
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    for job_id, name in zip(ids, ("run A", "run B", "run C")):
        assert f'href="/jobs/{job_id}">{name}</a>' in html
    assert html.count('class="num best"') >= 8 and html.count("★ best</span>") >= 9      # + the legend's
    assert 'data-row="perplexity"' in html and 'id="compare-data"' in html
    assert f'href="/jobs/compare.pdf?ids={ids[0]},{ids[1]},{ids[2]}"' in html
    assert 'id="config-differences"' in html and "hyperparameters.learning_rate" in html
    assert 'id="dataset-notice"' not in html
    # the comma list works too
    assert browser.get("/jobs/compare", query_string={"ids": ",".join(ids[:2])}).status_code == 200


def test_too_few_or_too_many_ticked_get_a_page_saying_how_many(console):
    browser, person = console
    ids = seed_finished_runs(None, person, n=5)
    for count in (0, 1, 5):
        r = browser.get("/jobs/compare", query_string=[("ids", i) for i in ids[:count]])
        assert r.status_code == 400
        html = r.get_data(as_text=True)
        assert "Pick 2 to 4 jobs" in html and f"Compare 2 to 4 jobs: got {count}" in html


def test_an_unknown_id_gets_the_not_found_page_naming_it(console):
    browser, person = console
    ids = seed_finished_runs(None, person, n=2)
    r = browser.get("/jobs/compare", query_string={"ids": f"{ids[0]},tj_nope"})
    assert r.status_code == 404 and "tj_nope" in r.get_data(as_text=True)


def test_the_service_refuses_a_bad_count_itself(app, ana, five):
    with pytest.raises(ConfigError, match="compare 2 to 4 jobs: got 1"):
        comparison.compare(ana[0], five[:1])
    with pytest.raises(ConfigError, match="given twice"):
        comparison.compare(ana[0], [five[0], five[0]])
