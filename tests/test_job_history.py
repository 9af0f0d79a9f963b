"""History that answers questions: the jobs list's filters (preset, tag, dataset, cost and
duration ranges, approved or not) and sorts (duration, perplexity gain) on the API and the
console, the CSV export of the filtered list (the list's own jobs in the list's order, costs
with cents, no formula a spreadsheet would run, bounded), a dataset's trends, and the
perplexity gain the evaluations keep on the job. Rows are seeded directly: nothing trains."""
from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest

from control.extensions import db
from control.models import ApiToken, EvaluationRun, JobAttempt, TrainingFile, TrainingJob, User
from control.services import job_export, re_evaluation
from control.services.ingest import ingest
from shared.events import EventStream
from tests.test_console import PASSWORD, Console

NOW = datetime(2026, 3, 20, 12, 0, tzinfo=timezone.utc)

# name, preset, tags, dataset, cost, minutes, gain, delivery, status, days ago
JOBS = [
    ("alpha", "balanced", ["acme", "v1"], "main", 1.25, 30.0, 35.5, "approved", "completed", 10),
    ("beta", "aggressive", ["acme"], "main", 12.3, 95.0, 12.0, "rejected", "completed", 8),
    ("=HYPERLINK(\"http://evil\")", "conservative", ["+x"], "side", 3.5, 10.0, None, None, "failed", 6),
    ("gamma", "balanced", ["v1", "café"], "main", 0.0, None, None, None, "pending", 4),
    ("delta", "balanced", ["-neg", "@at"], "main", 7.0, 60.0, 48.0, None, "completed", 2),
]


def _file(owner: User, name: str) -> TrainingFile:
    return TrainingFile(filename=name, format="brightrun-lora-v4", storage_key=f"training-files/{name}",
                        sha256="0" * 64, size_bytes=1000, created_by=owner.id, status="ready",
                        statistics={"conversations": 10, "trainable_pairs": 20, "tokens": {"folded": 5000}})


def _job(owner: User, tf: TrainingFile, name, preset, tags, cost, minutes, gain, delivery, status, days) -> TrainingJob:
    created = NOW - timedelta(days=days)
    started = created + timedelta(minutes=5) if status != "pending" else None
    return TrainingJob(
        training_file_id=tf.id, name=name, tags=tags, preset=preset, configuration={"gpu": {"price_per_hour": 2.0}},
        base_model="embedded", method="lora", gpu_type="H100_PCIE", gpu_pricing_tier="spot", status=status,
        cost_estimate=cost + 1.0, actual_cost=cost, actual_duration_minutes=minutes, perplexity_gain_pct=gain,
        delivery_status=delivery, started_at=started,
        completed_at=started + timedelta(minutes=minutes) if started and minutes else None,
        storage_prefix=f"jobs/{name}", created_by=owner.id, created_at=created, updated_at=created)


@pytest.fixture
def world(app):
    """An engineer with a password and a token, two datasets of theirs and the five jobs
    above; another engineer with a dataset and a completed job of their own."""
    owner = User(email="ana@example.com", role="engineer")
    owner.set_password(PASSWORD)
    other = User(email="bo@example.com", role="engineer")
    token, plain = ApiToken.issue(owner)
    db.session.add_all([owner, other, token])
    db.session.flush()
    files = {"main": _file(owner, "support.json"), "side": _file(owner, "=side.json"), "bo": _file(other, "bo.json")}
    db.session.add_all(files.values())
    db.session.flush()
    jobs = {spec[0]: _job(owner, files[spec[3]], *spec[:3], *spec[4:]) for spec in JOBS}
    jobs["bo"] = _job(other, files["bo"], "bo's run", "balanced", ["acme"], 2.0, 20.0, 50.0, None, "completed", 3)
    db.session.add_all(jobs.values())
    db.session.commit()
    return SimpleNamespace(auth={"Authorization": f"Bearer {plain}"}, files={k: f.id for k, f in files.items()},
                           ids={k: j.id for k, j in jobs.items()}, owner=owner.id)


def _names(world, ids: list[str]) -> list[str]:
    by_id = {v: k for k, v in world.ids.items()}
    return [by_id[i] for i in ids]


def _api(client, world, query: str) -> dict:
    r = client.get(f"/api/training/jobs?per_page=200&{query}", headers=world.auth)
    assert r.status_code == 200, r.get_json()
    return r.get_json()


def _csv(response) -> list[dict]:
    return list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))


CASES = [   # query, the names it lists (newest first unless sorted)
    ("preset=balanced", ["delta", "gamma", "alpha"]),
    ("tag=acme", ["beta", "alpha"]),
    ("tag=caf%C3%A9", ["gamma"]),                 # stored escaped on SQLite, as is on Postgres
    ("tag=ac", []),                               # a whole tag, not a part of one
    ("training_file_id={side}", ['=HYPERLINK("http://evil")']),
    ("cost_min=3.5", ["delta", '=HYPERLINK("http://evil")', "beta"]),
    ("cost_min=1&cost_max=7", ["delta", '=HYPERLINK("http://evil")', "alpha"]),
    ("cost_max=0", ["gamma"]),
    ("duration_min=30&duration_max=60", ["delta", "alpha"]),
    ("duration_max=15", ['=HYPERLINK("http://evil")']),
    ("delivery=approved", ["alpha"]),
    ("delivery=not_approved", ["delta", "gamma", '=HYPERLINK("http://evil")', "beta"]),
    ("delivery=rejected&tag=acme", ["beta"]),
    ("training_file_id={main}&preset=balanced&cost_min=1", ["delta", "alpha"]),
    ("sort=duration", ["beta", "delta", "alpha", '=HYPERLINK("http://evil")', "gamma"]),
    ("sort=perplexity_gain", ["delta", "alpha", "beta", "gamma", '=HYPERLINK("http://evil")']),
    ("sort=perplexity_gain&status=completed", ["delta", "alpha", "beta"]),
]


def test_each_history_filter_and_sort_on_the_api(client, world):
    for query, names in CASES:
        body = _api(client, world, query.format(**world.files))
        assert _names(world, [j["id"] for j in body["data"]]) == names, query
        assert body["total"] == len(names), query
    # another engineer's job is never in an engineer's list, whatever the filter names
    assert _api(client, world, f"training_file_id={world.files['bo']}")["total"] == 0
    body = client.get("/api/training/jobs?sort=perplexity_gain&per_page=1", headers=world.auth).get_json()
    assert body["data"][0]["perplexity_gain_pct"] == 48.0 and body["total"] == 5


BAD = [
    ("preset=huge", "preset"), ("cost_min=-1", "cost_min"), ("cost_min=abc", "cost_min"),
    ("cost_max=nan", "cost_max"), ("cost_max=1e12", "cost_max"), ("cost_min=5&cost_max=2", "cost_max"),
    ("duration_min=-3", "duration_min"), ("duration_min=90&duration_max=30", "duration_max"),
    ("duration_max=99999999", "duration_max"), ("delivery=maybe", "delivery"), ("sort=gain", "sort"),
    ("format=xlsx", "format"), ("training_file_id=", "training_file_id"), ("tag=" + "t" * 51, "tag"),
]


def test_a_bad_history_filter_is_refused_naming_it(client, world):
    for query, field in BAD:
        for fmt in ("json", "csv"):
            r = client.get(f"/api/training/jobs?{query}" + ("&format=csv" if fmt == "csv" and field != "format" else ""),
                           headers=world.auth)
            assert r.status_code == 400, (query, fmt)
            assert r.get_json()["error"]["field"] == field, (query, fmt)
            assert field in r.get_json()["error"]["message"], (query, fmt)


def test_the_csv_export_is_the_filtered_list(client, world):
    for query, _ in CASES + [("", None), ("sort=name", None), ("sort=cost&tag=v1", None)]:
        q = query.format(**world.files)
        listed = _api(client, world, q)
        r = client.get(f"/api/training/jobs?format=csv&{q}", headers=world.auth)
        assert r.status_code == 200 and r.mimetype == "text/csv", q
        rows = _csv(r)
        assert [row["id"] for row in rows] == [j["id"] for j in listed["data"]], q
        assert r.headers["X-Total-Count"] == str(listed["total"]) == r.headers["X-Export-Rows"], q
        assert r.headers["X-Export-Truncated"] == "false"
    disposition = r.headers["Content-Disposition"]
    assert disposition.startswith('attachment; filename="brightrun-jobs-') and disposition.endswith('.csv"')
    # page and per_page do not cut the export: it is the whole filtered list
    r = client.get("/api/training/jobs?format=csv&per_page=1&page=2", headers=world.auth)
    assert len(_csv(r)) == 5


def test_the_csv_names_every_column_with_cents_minutes_utc_dates_and_no_formulas(client, world):
    r = client.get("/api/training/jobs?format=csv&sort=oldest", headers=world.auth)
    text = r.get_data(as_text=True)
    assert text.splitlines()[0] == ",".join(job_export.COLUMNS)
    rows = {row["id"]: row for row in _csv(r)}
    alpha, beta, evil = rows[world.ids["alpha"]], rows[world.ids["beta"]], rows[world.ids[JOBS[2][0]]]
    assert (alpha["cost_usd"], alpha["estimated_cost_usd"], beta["cost_usd"]) == ("1.25", "2.25", "12.30")
    assert rows[world.ids["gamma"]]["cost_usd"] == "0.00"
    assert (alpha["duration_minutes"], alpha["perplexity_gain_pct"], alpha["delivery_status"]) == ("30.0", "35.50", "approved")
    assert rows[world.ids["gamma"]]["duration_minutes"] == "" and rows[world.ids["gamma"]]["perplexity_gain_pct"] == ""
    assert alpha["created_at"] == "2026-03-10T12:00:00Z" and alpha["completed_at"] == "2026-03-10T12:35:00Z"
    assert (alpha["tags"], alpha["dataset"], alpha["created_by"]) == ("acme; v1", "support.json", "ana@example.com")
    # what people typed never starts a formula; the data itself (ids, figures) is untouched
    assert evil["name"] == "'=HYPERLINK(\"http://evil\")" and evil["tags"] == "'+x" and evil["dataset"] == "'=side.json"
    assert rows[world.ids["delta"]]["tags"] == "'-neg; @at"
    assert all(not row[c].startswith(("=", "+", "-", "@")) for row in rows.values() for c in job_export.COLUMNS)


def test_the_csv_export_is_bounded_and_says_when_it_is_cut(client, world, monkeypatch):
    monkeypatch.setattr(job_export, "MAX_ROWS", 2)
    r = client.get("/api/training/jobs?format=csv", headers=world.auth)
    assert [row["name"] for row in _csv(r)] == ["delta", "gamma"]
    assert (r.headers["X-Total-Count"], r.headers["X-Export-Rows"], r.headers["X-Export-Limit"],
            r.headers["X-Export-Truncated"]) == ("5", "2", "2", "true")
    r = client.get("/api/training/jobs?format=csv&tag=acme", headers=world.auth)
    assert r.headers["X-Export-Truncated"] == "false" and len(_csv(r)) == 2
    assert job_export.EXPORT_MAX_ROWS == 10_000


def test_a_datasets_trends(client, world, make_user):
    r = client.get(f"/api/training/jobs/trends?training_file_id={world.files['main']}", headers=world.auth)
    assert r.status_code == 200
    body = r.get_json()
    # completed jobs only, oldest first; the pending one has no point
    assert [p["name"] for p in body["points"]] == ["alpha", "beta", "delta"]
    assert [p["perplexity_gain_pct"] for p in body["points"]] == [35.5, 12.0, 48.0]
    assert [p["cost_usd"] for p in body["points"]] == [1.25, 12.3, 7.0]
    assert body["completed_jobs"] == body["shown"] == 3 and body["filename"] == "support.json"
    assert body["summary"] == {"best": {"id": world.ids["delta"], "name": "delta", "perplexity_gain_pct": 48.0},
                               "median_gain_pct": 35.5, "median_cost_usd": 7.0, "total_cost_usd": 20.55}
    r = client.get(f"/api/training/jobs/trends?training_file_id={world.files['main']}&limit=1", headers=world.auth)
    assert [p["name"] for p in r.get_json()["points"]] == ["delta"] and r.get_json()["completed_jobs"] == 3
    # another user's dataset is not found; a missing or unbounded parameter is refused naming it
    r = client.get(f"/api/training/jobs/trends?training_file_id={world.files['bo']}", headers=world.auth)
    assert r.status_code == 404
    for query, field in (("", "training_file_id"), (f"training_file_id={world.files['main']}&limit=501", "limit")):
        r = client.get(f"/api/training/jobs/trends?{query}", headers=world.auth)
        assert r.status_code == 400 and r.get_json()["error"]["field"] == field
    # an admin sees everyone's jobs on the dataset
    admin = make_user("root@example.com", "admin")[1]
    r = client.get(f"/api/training/jobs/trends?training_file_id={world.files['bo']}", headers=admin)
    assert [p["name"] for p in r.get_json()["points"]] == ["bo's run"]


def test_the_newest_completed_evaluation_sets_the_jobs_perplexity_gain(app, world):
    job = db.session.get(TrainingJob, world.ids["gamma"])
    job.status, job.perplexity_gain_pct = "evaluating", None
    attempt = JobAttempt(job=job, number=1, runpod_job_id="rp-1", runpod_status="IN_PROGRESS")
    db.session.add(attempt)
    db.session.commit()
    stream = EventStream(job.id, 1)
    scores = {"conversations": 3, "targets": 7, "tokens": 600, "base": {"loss": 3.4, "perplexity": 30.0},
              "trained": {"loss": 3.0, "perplexity": 20.0}}
    ingest(job, attempt, [stream.make("evaluation", **scores, improvement_pct=33.3)])
    assert db.session.get(TrainingJob, job.id).perplexity_gain_pct == 33.3
    # a re-evaluation: its result replaces the training run's once it completes
    job.status = "completed"
    run = EvaluationRun(training_job_id=job.id, status="running", settings={"size": "quick"}, runpod_job_id="rp-2")
    db.session.add(run)
    db.session.commit()
    again = EventStream(job.id, 1)
    re_evaluation.apply(run, again.make("evaluation", **scores, improvement_pct=41.0, run_id=run.id))
    assert job.perplexity_gain_pct == 33.3           # not yet: the run has not completed
    re_evaluation.apply(run, again.make("completed", summary={}))
    db.session.commit()
    assert db.session.get(TrainingJob, job.id).perplexity_gain_pct == 41.0


# ---------------------------------------------------------------------------- the console

@pytest.fixture
def console(app, world):
    return Console(app).login("ana@example.com")


def _listed(html: str, world) -> list[str]:
    by_id = {v: k for k, v in world.ids.items()}
    order = []
    for chunk in html.split('data-job-id="')[1:]:
        job_id = chunk.split('"', 1)[0]
        if job_id in by_id and by_id[job_id] not in order:
            order.append(by_id[job_id])
    return order


def test_the_console_list_filters_and_sorts_by_the_history_fields(console, world):
    for query, names in CASES:
        q = query.format(**world.files)
        r = console.get(f"/jobs?{q}")
        assert r.status_code == 200, q
        html = r.get_data(as_text=True)
        listed = html.split('<table class="list" id="jobs"', 1)[1] if names else ""
        assert _listed(listed, world) == names, q
        if not names:
            assert "No job matches these filters" in html, q
    html = console.get("/jobs?preset=aggressive&cost_min=2").get_data(as_text=True)
    assert '<option value="aggressive" selected>' in html and 'name="cost_min" value="2"' in html
    assert ">perplexity gain</option>" in html and ">duration</option>" in html


def test_the_console_list_names_a_bad_history_filter_and_keeps_the_others(console, world):
    html = console.get("/jobs?cost_min=5&cost_max=2&preset=balanced").get_data(as_text=True)
    assert "cost_max: must be at least cost_min (5), got 2" in html
    assert _listed(html.split('id="jobs"', 1)[1], world) == ["delta"]     # balanced, cost at least 5
    html = console.get("/jobs?duration_min=-1").get_data(as_text=True)
    assert "duration_min: Input should be greater than or equal to 0" in html
    r = console.get("/jobs.csv?duration_min=-1")
    assert r.status_code == 302 and "/jobs?duration_min=-1" in r.headers["Location"]
    assert "Not exported: duration_min" in console.get(r.headers["Location"]).get_data(as_text=True)


def test_the_console_export_button_carries_the_filters_and_gives_the_same_csv(console, client, world):
    html = console.get(f"/jobs?tag=acme&sort=perplexity_gain&page=1&training_file_id={world.files['main']}").get_data(as_text=True)
    href = html.split('id="export-csv" href="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
    assert href.startswith("/jobs.csv?") and "tag=acme" in href and "sort=perplexity_gain" in href and "page=" not in href
    r = console.get(href)
    assert r.status_code == 200 and r.mimetype == "text/csv"
    assert r.headers["Content-Disposition"].startswith("attachment; filename=")
    assert [row["name"] for row in _csv(r)] == ["alpha", "beta"]
    api = client.get(f"/api/training/jobs?format=csv&tag=acme&sort=perplexity_gain&training_file_id={world.files['main']}",
                     headers=world.auth)
    assert _csv(api) == _csv(r)


def test_the_console_warns_when_the_export_would_be_cut(console, world, monkeypatch):
    monkeypatch.setattr(job_export, "MAX_ROWS", 3)
    assert "Export CSV holds the first 3 of these 5 jobs" in console.get("/jobs").get_data(as_text=True)
    assert 'id="export-cut"' not in console.get("/jobs?tag=acme").get_data(as_text=True)


def test_the_trends_panel_shows_on_the_list_filtered_to_one_dataset(console, world):
    html = console.get("/jobs").get_data(as_text=True)
    assert 'id="trends"' not in html and "trends.js" not in html
    html = console.get(f"/jobs?training_file_id={world.files['main']}").get_data(as_text=True)
    panel = html.split('id="trends"', 1)[1].split("</section>", 1)[0]
    assert "Trends · support.json" in panel and 'id="trends-chart"' in panel
    assert "48.0%" in panel and "delta" in panel and "$20.55" in panel            # best gain, total cost
    assert panel.count("<tr data-job-id=") == 3
    assert "vendor/chart-4.6.1.umd.min.js" in html and "trends.js" in html
    html = console.get(f"/jobs?training_file_id={world.files['side']}").get_data(as_text=True)
    assert 'id="trends-empty"' in html                                         # no completed job yet
    html = console.get(f"/jobs?training_file_id={world.files['bo']}").get_data(as_text=True)
    assert 'id="trends"' not in html                                            # not theirs: no panel
