"""The evaluation in the console, on Postgres and SQLite: the measure cards on the job page,
the before/after page (suites, categories, pages, bad queries), and the re-evaluate form.

A completed job's evaluation is written to storage as the handler writes it
(``shared.evaluation.report``'s summary and samples, the judge's verdicts), and its
artifact row carries the measures, as the ingested ``evaluation`` event leaves it."""
from __future__ import annotations

import io
import json
import re
from html import unescape

import pytest
from sqlalchemy import select

from control.extensions import db
from control.models import EvaluationRun, JobStatus, ModelArtifact, TrainingJob, User, utcnow
from control.schemas import CreateJob
from control.services import training_files, training_jobs
from control.services.storage import get_storage
from shared.evaluation.measures import all_measures
from shared.evaluation.report import EvaluationSummary, Sample, write_samples
from shared.evaluation.statistics import win_rate
from shared.storage.layout import JobLayout
from tests.test_console import XSS, Console

PERPLEXITY = {"split": "validation", "conversations": 3, "targets": 7, "tokens": 638,
              "base": {"loss": 3.4551, "perplexity": 31.662}, "trained": {"loss": 3.0628, "perplexity": 21.387},
              "improvement_pct": 32.5, "interval_pct": [18.0, 41.2], "per_conversation": []}
FORGETTING = {"base": {"accuracy": 0.8, "correct": 40, "n": 50, "by_topic": {"taxes": 0.8}},
              "adapter": {"accuracy": 0.72, "correct": 36, "n": 50, "by_topic": {"taxes": 0.72}},
              "retention_pct": 90.0, "questions": 50, "answers": []}
SIMILARITY = {"n": 23, "base_mean": 0.4123, "adapter_mean": 0.5561, "win_rate": win_rate(17, 2, 4)}
FORGETTING_FLAG = {"code": "forgetting", "retention_pct": 90.0,
                   "message": "The adapter kept less than 95% of the base model's financial knowledge. "
                              "Retrain with a lower learning rate, the conservative preset, or fewer epochs.",
                   "advice": {"learning_rate": "lower", "preset": "conservative", "num_epochs": "fewer"}}
EI_CATEGORIES = ["anxious", "anxious", "grieving", "overwhelmed", "grieving", "anxious"]


def _heldout(i: int) -> Sample:
    return Sample(suite="heldout", id=f"conv-{i}-t2", prompt=[
        {"role": "system", "content": "You are a calm financial planner."},
        {"role": "user", "content": f"Earlier question {i}"},
        {"role": "assistant", "content": f"Earlier reply {i}"},
        {"role": "user", "content": f"Held-out question {i}?" if i != 1 else XSS}],
        base=f"Base answer {i}.", adapter=f"Adapter answer {i}.", reference=f"Reference reply {i}.",
        scores={"base_tokens": 40, "adapter_tokens": 52, "base_similarity": 0.41, "adapter_similarity": 0.58})


def _scenario(i: int, category: str) -> Sample:
    return Sample(suite="ei", id=f"ei-{i:03d}", category=category, prompt=[
        {"role": "system", "content": "You are a financial planner."},
        {"role": "user", "content": f"Scenario {i} ({category})"}],
        base=f"Base reply to scenario {i}.", adapter=f"Adapter reply to scenario {i}.",
        guidance=[f"names the feeling in scenario {i}", "offers one next step"],
        scores={"base_tokens": 60, "adapter_tokens": 70})


def _store_evaluation(job: TrainingJob) -> None:
    """The training run's evaluation, as the handler and the judge leave it."""
    storage, layout = get_storage(), JobLayout(job.storage_prefix).evaluation
    parts = {"perplexity": PERPLEXITY, "forgetting": FORGETTING, "similarity": SIMILARITY}
    suites = {"heldout": [_heldout(i) for i in range(1, 24)],
              "ei": [_scenario(i, c) for i, c in enumerate(EI_CATEGORIES, 1)]}
    info = {}
    for suite, rows in suites.items():
        write_samples(storage, layout.samples(suite), rows)
        counts: dict[str, int] = {}
        for r in rows:
            if r.category:
                counts[r.category] = counts.get(r.category, 0) + 1
        info[suite] = {"samples": len(rows), "categories": counts, "key": layout.samples(suite)}
    measures = all_measures(parts)
    summary = EvaluationSummary(
        fingerprint="f" * 16, size="quick", max_new_tokens=256, measures=measures, perplexity=PERPLEXITY,
        forgetting=FORGETTING, similarity=SIMILARITY, suites=info, flags=[FORGETTING_FLAG],
        data={"scored_split": "validation", "held_out_conversations": 3, "forgetting_questions": 50})
    storage.put_bytes(layout.summary, summary.model_dump_json(indent=2).encode())
    verdicts = [{"id": "ei/ei-003", "suite": "ei", "category": "grieving", "verdict": "win", "orders": []},
                {"id": "ei/ei-005", "suite": "ei", "category": "grieving", "verdict": "loss", "orders": []}]
    storage.put_bytes(layout.judge, json.dumps({"model": "judge-mini", "host": "judge.example",
                                                "win_rate": win_rate(1, 0, 1), "items": verdicts}).encode())
    art = ModelArtifact(training_job_id=job.id, adapter_path=f"{job.storage_prefix}/adapter", evaluation={
        **{k: PERPLEXITY[k] for k in ("split", "conversations", "targets", "tokens", "base", "trained",
                                      "improvement_pct")},
        "key": layout.summary, "measures": [m.model_dump(mode="json") for m in measures],
        "suites": {k: {"samples": v["samples"], "categories": v["categories"]} for k, v in info.items()},
        "flags": [FORGETTING_FLAG]})
    db.session.add(art)
    db.session.commit()


def _job(user: User, dataset: bytes, *, completed: bool, name="anxious clients v3") -> TrainingJob:
    """A job of ``dataset`` (uploaded and validated), marked completed or left pending."""
    tf = training_files.create(user, io.BytesIO(dataset), "sample.json")
    training_files.validate(tf.id)
    job = training_jobs.create(user, CreateJob.model_validate(
        {"training_file_id": tf.id, "name": name, "base_model": "meta-llama/Meta-Llama-3-70B-Instruct",
         "method": "qlora"}, strict=False))
    if completed:
        job.status, job.completed_at = JobStatus.COMPLETED, utcnow()
        db.session.commit()
    return job


@pytest.fixture
def person(app, make_person):
    return make_person()


@pytest.fixture
def console(app, person):
    return Console(app).login(person.email)


@pytest.fixture
def evaluated(person, small_sample):
    job = _job(person, small_sample, completed=True)
    _store_evaluation(job)
    return job


def _text(r) -> str:
    return r.get_data(as_text=True)


def _visible(html: str) -> str:
    """The page's words without tags, spaces folded: what a reader sees."""
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html)))


# ---------------------------------------------------------------------------- the job page

def test_the_job_page_shows_each_measure_its_status_and_interval(console, evaluated):
    html = _text(console.get(f"/jobs/{evaluated.id}"))
    section = html[html.index('id="evaluation"'):html.index('id="metrics-table"')]
    seen = _visible(section)
    for name in ("Held-out perplexity", "Emotional intelligence (people's blind scores)",
                 "Forgetting check (financial knowledge)", "Brand voice (people's scores on the rubric)",
                 "Similarity to the reference replies", "Automatic judge (judge-mini), pairwise"):
        assert name in seen, name
    assert "31.66 → 21.39" in seen and "32.5% lower [18.0, 41.2]" in seen
    assert "Target: at least 30% lower than the base model" in seen
    assert re.search(r'data-measure="perplexity".*?target met', section, re.S)
    assert re.search(r'data-measure="forgetting".*?target not met', section, re.S)
    assert seen.count("waiting for people's scores") == 2          # emotional intelligence, brand voice
    assert "90.0% of the base model's accuracy kept" in seen and "n = 50" in seen
    assert "Scored by people" in seen and "Scored by a model (automatic judge)" in seen
    assert 'data-flag="forgetting"' in section and "preset: conservative" in seen
    assert "Perplexity 32.5% better" in seen and "95% interval [18.0, 41.2]" in seen
    assert f'href="/jobs/{evaluated.id}/evaluation"' in section and "Before / after answers →" in seen
    assert "The training run's evaluation" in seen and 'name="max_new_tokens"' in section
    assert 'style="' not in section and "<script" not in section        # the CSP allows neither


def test_a_job_still_training_has_no_evaluation_section_nor_form(console, person, small_sample):
    job = _job(person, small_sample, completed=False)
    html = _text(console.get(f"/jobs/{job.id}"))
    assert 'id="evaluation"' not in html and "Evaluate again" not in html


# ---------------------------------------------------------------------------- the before/after page

def test_the_before_after_page_shows_both_answers_of_the_first_page_side_by_side(console, evaluated):
    r = console.get(f"/jobs/{evaluated.id}/evaluation")
    assert r.status_code == 200
    html = _text(r)
    seen = _visible(html)
    assert "Held-out turns 23" in seen and "Emotional-intelligence scenarios 6" in seen   # the suites' tabs
    assert "1–10 of 23 held-out turns" in seen
    assert html.count('class="sample"') == 10
    for i in range(1, 11):
        assert f"Base answer {i}." in seen and f"Adapter answer {i}." in seen and f"Reference reply {i}." in seen
    assert "Base answer 11." not in seen
    assert "Held-out question 2?" in seen and "Earlier turns (3)" in seen
    assert "<details class=\"earlier\">" in html            # earlier turns fold away
    assert "similarity to the reference 0.41" in seen and "similarity to the reference 0.58" in seen
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html and XSS not in html
    assert "32.5% lower [18.0, 41.2]" in seen                # the measure cards head the page
    assert 'rel="next"' in html and "Page 1 of 3" in seen


def test_page_two_shows_the_next_ten_and_a_page_past_the_end_shows_the_last(console, evaluated):
    seen = _visible(_text(console.get(f"/jobs/{evaluated.id}/evaluation?suite=heldout&page=2")))
    assert "11–20 of 23" in seen and "Base answer 11." in seen and "Base answer 20." in seen
    assert "Base answer 10." not in seen and "Base answer 21." not in seen
    r = console.get(f"/jobs/{evaluated.id}/evaluation?suite=heldout&page=99")
    assert r.status_code == 200
    seen = _visible(_text(r))
    assert "There is no page 99: showing the last page, 3 of 3." in seen and "Base answer 23." in seen
    seen = _visible(_text(console.get(f"/jobs/{evaluated.id}/evaluation?page=two")))
    assert "'two' is not a page number: showing page 1 of 3" in seen and "Base answer 1." in seen


def test_filtering_by_category_shows_only_that_category(console, evaluated):
    html = _text(console.get(f"/jobs/{evaluated.id}/evaluation?suite=ei&category=grieving"))
    assert re.findall(r'data-category="([^"]*)"', html) == ["grieving", "grieving"]
    seen = _visible(html)
    assert "Adapter reply to scenario 3." in seen and "Adapter reply to scenario 5." in seen
    assert "scenario 1." not in seen and "1–2 of 2 emotional-intelligence scenarios in grieving" in seen
    assert "What a good reply does" in seen and "names the feeling in scenario 3" in seen
    assert "the adapter's answer is better" in seen and "the base model's answer is better" in seen
    assert "grieving (2)" in seen and "anxious (3)" in seen         # the filter's choices, with counts


def test_an_unknown_suite_category_or_run_gets_the_not_found_page_saying_what_there_is(console, evaluated):
    for query, says in (("suite=nope", "no suite 'nope'; its suites are: heldout (held-out turns), ei"),
                        ("suite=custom", "no suite 'custom'"),
                        ("suite=ei&category=bored", "no category 'bored'; their categories are: anxious, grieving"),
                        ("run=ev_missing", "no evaluation 'ev_missing'")):
        r = console.get(f"/jobs/{evaluated.id}/evaluation?{query}")
        assert r.status_code == 404, query
        assert says in _visible(_text(r)), query


def test_a_job_without_an_evaluation_gets_the_not_found_page(console, person, small_sample):
    job = _job(person, small_sample, completed=True)
    r = console.get(f"/jobs/{job.id}/evaluation")
    assert r.status_code == 404 and "no evaluation of job" in _visible(_text(r))


def test_another_users_evaluation_is_not_found_and_cannot_be_rerun(app, evaluated, make_person):
    make_person("ben@example.com")
    ben = Console(app).login("ben@example.com")
    assert ben.get(f"/jobs/{evaluated.id}/evaluation").status_code == 404
    assert ben.post(f"/jobs/{evaluated.id}/evaluate", {"max_new_tokens": "256"}).status_code == 404
    assert db.session.scalars(select(EvaluationRun)).all() == []


# ---------------------------------------------------------------------------- the re-evaluate form

def test_re_evaluating_queues_a_run_and_says_so_on_the_job_page(console, evaluated):
    console.get(f"/jobs/{evaluated.id}")
    r = console.post(f"/jobs/{evaluated.id}/evaluate", {"size": "quick", "max_new_tokens": "128",
                                                        "prompts_file_id": ""})
    assert r.status_code == 302 and r.headers["Location"].endswith(f"/jobs/{evaluated.id}")
    run = db.session.scalars(select(EvaluationRun)).one()
    assert run.status == "queued" and run.training_job_id == evaluated.id
    assert run.settings == {"size": "quick", "max_new_tokens": 128, "prompts_file_id": None}
    html = _text(console.get(f"/jobs/{evaluated.id}"))
    seen = _visible(html)
    assert f"Re-evaluation {run.id} queued (quick, at most 128 new tokens an answer)" in seen
    assert re.search(rf'data-run="{run.id}".*?data-status="queued"', html, re.S)
    queued = _visible(_text(console.get(f"/jobs/{evaluated.id}/evaluation?run={run.id}")))
    assert "This evaluation is queued" in queued and "its answers appear here when it completes" in queued
    again = console.post(f"/jobs/{evaluated.id}/evaluate", {"max_new_tokens": "256"}, follow_redirects=True)
    assert f"re-evaluation {run.id} is still queued" in _visible(_text(again))
    assert len(db.session.scalars(select(EvaluationRun)).all()) == 1


def test_re_evaluating_a_job_that_is_not_completed_says_why_and_queues_nothing(console, person, small_sample):
    job = _job(person, small_sample, completed=False)
    console.get(f"/jobs/{job.id}")
    r = console.post(f"/jobs/{job.id}/evaluate", {"max_new_tokens": "256"}, follow_redirects=True)
    assert "only a completed job has an adapter to evaluate" in _visible(_text(r))
    assert db.session.scalars(select(EvaluationRun)).all() == []


def test_bad_re_evaluation_settings_are_named_and_queue_nothing(console, evaluated):
    console.get(f"/jobs/{evaluated.id}")
    r = console.post(f"/jobs/{evaluated.id}/evaluate", {"size": "huge", "max_new_tokens": "0"},
                     follow_redirects=True)
    seen = _visible(_text(r))
    assert "size: Input should be 'quick', 'full' or 'perplexity'" in seen
    assert "max_new_tokens: Input should be greater than or equal to 1" in seen
    assert db.session.scalars(select(EvaluationRun)).all() == []


def test_the_form_offers_the_users_ready_prompts_files_and_refuses_a_dataset(console, person, evaluated):
    prompts = training_files.create(person, io.BytesIO(b'{"prompt": "How do I start a budget?"}\n'),
                                    "my-prompts.jsonl", purpose="evaluation")
    training_files.validate(prompts.id)
    html = _text(console.get(f"/jobs/{evaluated.id}"))
    assert f'<option value="{prompts.id}">my-prompts.jsonl ({prompts.id})</option>' in html
    assert f'<option value="{evaluated.training_file_id}">' not in html        # a fine-tune file: not prompts
    r = console.post(f"/jobs/{evaluated.id}/evaluate",
                     {"max_new_tokens": "256", "prompts_file_id": evaluated.training_file_id},
                     follow_redirects=True)
    assert "only an evaluation file can be evaluated on" in _visible(_text(r))
    assert db.session.scalars(select(EvaluationRun)).all() == []
    console.post(f"/jobs/{evaluated.id}/evaluate", {"max_new_tokens": "256", "prompts_file_id": prompts.id})
    assert db.session.scalars(select(EvaluationRun)).one().settings["prompts_file_id"] == prompts.id
