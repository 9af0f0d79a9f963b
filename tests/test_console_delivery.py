"""What a client receives, in the console, on Postgres and SQLite: the blind review pages,
people's figures on the measures, the quality gate and the decision, the validation report,
share links, rubrics, and the jobs list's delivery badge and filter.

A completed job's evaluation is fabricated in storage as ``tests/test_console_evaluation.py``
does it (6 scenarios, 23 held-out turns); here the scenarios' answers are rewritten so that
their words do not say which model wrote them, as real answers don't."""
from __future__ import annotations

import io
import re

import pytest

from control.extensions import db
from control.models import Review, TrainingJob, ValidationReport
from control.schemas import ReviewRequest
from control.services import reviews, training_files
from control.services.storage import get_storage
from shared.evaluation.report import Sample, write_samples
from shared.storage.layout import JobLayout
from tests.test_console import Console
from tests.test_console_evaluation import _job, _store_evaluation, _visible

CRITERIA = ("empathy", "clarity", "appropriateness")
# The words that would give the blind review away.
MODEL_WORDS = re.compile(r"\b(adapter|base)\b", re.I)


def neutral_answers(job: TrainingJob) -> dict[str, dict[str, str]]:
    """Rewrite the job's scenarios with answers that do not name their model; returns each
    scenario's answers by model, for the test to know what the page must not say."""
    layout = JobLayout(job.storage_prefix).evaluation
    answers, rows = {}, []
    for i, category in enumerate(["anxious", "anxious", "grieving", "overwhelmed", "grieving", "anxious"], 1):
        sid = f"ei-{i:03d}"
        answers[sid] = {"base": f"Make a budget and cut spending, case {i}.",
                        "adapter": f"That sounds heavy to carry. Let us take one small step together, case {i}."}
        rows.append(Sample(suite="ei", id=sid, category=category, prompt=[
            {"role": "system", "content": "You are a financial planner."},
            {"role": "user", "content": f"Scenario {i}: I am scared about money ({category})."}],
            base=answers[sid]["base"], adapter=answers[sid]["adapter"],
            guidance=[f"names the feeling in scenario {i}", "offers one next step"]))
    write_samples(get_storage(), layout.samples("ei"), rows)
    return answers


def ei_form(page: str, answers: dict[str, str], adapter: int, other: int, prefer_adapter=True) -> dict:
    """The scores a reviewer enters on a review page: the adapter's answer (found by its
    text) ``adapter`` on every criterion, the other one ``other``."""
    a_text = re.search(r'id="answer-A-title">Answer A</h2>\s*<p class="answer-text">([^<]*)</p>', page).group(1)
    a_is_adapter = a_text == answers["adapter"]
    form = {f"{label}-{c}": str(adapter if (label == "A") == a_is_adapter else other)
            for label in ("A", "B") for c in CRITERIA}
    form["preference"] = ("A" if a_is_adapter else "B") if prefer_adapter else "tie"
    for name in ("item_id", "run", "position"):
        form[name] = re.search(rf'name="{name}" value="([^"]*)"', page).group(1)
    return form


@pytest.fixture
def owner(make_person):
    return make_person("owner@example.com", "engineer")


@pytest.fixture
def reviewer(app, make_person):
    return make_person("rita@example.com", "reviewer")


@pytest.fixture
def evaluated(owner, small_sample):
    job = _job(owner, small_sample, completed=True)
    _store_evaluation(job)
    return job


@pytest.fixture
def answers(evaluated):
    return neutral_answers(evaluated)


def _text(r) -> str:
    return r.get_data(as_text=True)


def _review_all(user, job, adapter=5, other=2, brand=4, low_first=True) -> None:
    """Every item of both suites scored through the service (the pages are tested apart)."""
    while (page := reviews.item(user, job, "ei"))["item"]:
        item = page["item"]
        a_is_adapter = item["answers"]["A"].startswith("That sounds")
        scores = {label: {c: adapter if (label == "A") == a_is_adapter else other for c in CRITERIA}
                  for label in ("A", "B")}
        reviews.save(user, job, ReviewRequest(suite="ei", item_id=item["id"], answers=scores,
                                              preference="A" if a_is_adapter else "B"))
    first = True
    while (page := reviews.item(user, job, "brand_voice"))["item"]:
        scores = {c["id"]: brand for c in page["item"]["characteristics"]}
        if first and low_first:
            scores["warmth"] = 2
        first = False
        reviews.save(user, job, ReviewRequest(suite="brand_voice", item_id=page["item"]["id"], scores=scores))


# ---------------------------------------------------------------------------- blind review

def test_a_reviewer_sees_only_answers_a_and_b_and_the_scores_are_stored_by_model(app, reviewer, evaluated, answers):
    c = Console(app).login(reviewer.email)
    page = _text(c.get(f"/jobs/{evaluated.id}/review/ei"))
    assert "0 of 6 scored" in page and "Answer A" in page and "Answer B" in page
    assert "What a good reply does" in page and "Which answer is better?" in page
    assert not MODEL_WORDS.search(page), MODEL_WORDS.search(page)
    assert page.count('type="radio"') == 2 * 3 * 5 + 3            # two answers × three criteria, and A/B/tie
    item_id = re.search(r'name="item_id" value="([^"]*)"', page).group(1)
    r = c.post(f"/jobs/{evaluated.id}/review/ei", ei_form(page, answers[item_id], adapter=5, other=2))
    assert r.status_code == 302 and r.headers["Location"].endswith(f"/jobs/{evaluated.id}/review/ei?position=2")
    row = db.session.query(Review).filter_by(reviewer_id=reviewer.id, item_id=item_id).one()
    assert row.scores == {"adapter": {c: 5 for c in CRITERIA}, "base": {c: 2 for c in CRITERIA}}
    assert row.preference == "adapter"
    nxt = _text(c.get(r.headers["Location"]))
    assert "Saved item 1: 1 of 6 scored." in nxt and "item 2 of 6" in nxt


def test_a_form_with_a_score_missing_comes_back_marked_with_the_other_scores_kept(app, reviewer, evaluated, answers):
    c = Console(app).login(reviewer.email)
    url = f"/jobs/{evaluated.id}/review/ei"
    page = _text(c.get(url))
    form = ei_form(page, answers[re.search(r'name="item_id" value="([^"]*)"', page).group(1)], 4, 3)
    del form["B-clarity"], form["preference"]
    r = c.post(url, form)
    seen = _visible(_text(r))
    assert r.status_code == 400 and "Not saved: 2 things to fix" in seen
    assert "score Answer B's clarity from 1 to 5" in seen and "pick the better answer: A, B or a tie" in seen
    assert re.search(r'name="A-empathy" value="%s" checked' % form["A-empathy"], _text(r))
    assert db.session.query(Review).count() == 0


def test_a_saved_item_shows_its_scores_again_and_the_pages_go_back_and_forth(app, reviewer, evaluated, answers):
    c = Console(app).login(reviewer.email)
    url = f"/jobs/{evaluated.id}/review/ei"
    page = _text(c.get(url))
    form = ei_form(page, answers[re.search(r'name="item_id" value="([^"]*)"', page).group(1)], 4, 3,
                   prefer_adapter=False)
    c.post(url, form)
    again = _text(c.get(url + "?position=1"))
    assert "1 of 6 scored" in again and "your scores are filled in" in again
    assert 'name="preference" value="tie" checked' in again
    assert all(f'name="{k}" value="{v}" checked' in again for k, v in form.items() if k[:2] in ("A-", "B-"))
    assert 'rel="next"' in again and 'rel="prev"' not in again
    assert c.get(url + "?position=7").status_code == 404
    assert "no item 7: this job has 6" in _visible(_text(c.get(url + "?position=7")))
    assert c.get(url + "?position=two").status_code == 404


def test_brand_voice_shows_one_answer_and_the_rubric_and_ends_with_a_summary(app, reviewer, evaluated):
    c = Console(app).login(reviewer.email)
    url = f"/jobs/{evaluated.id}/review/brand-voice"
    page = _text(c.get(url))
    seen = _visible(page)
    assert "0 of 23 scored" in seen and "Warmth" in seen and "Cold, clinical or curt" in seen   # an anchor
    assert page.count('data-score-group') == 10 and "Answer B" not in seen
    assert "&lt;script&gt;" in page or "<script>alert" not in page                        # escaped prompts
    data = reviews.item(reviewer, evaluated, "brand_voice")
    ids = [ch["id"] for ch in data["item"]["characteristics"]]
    form = {f"score-{i}": "4" for i in ids} | {"item_id": data["item"]["id"], "run": data["run"], "position": "1"}
    assert c.post(url, form).status_code == 302
    _review_all(reviewer, evaluated)
    done = _visible(_text(c.get(url)))
    assert "Brand voice: all scored" in done and "23 of 23 scored" in done


def test_someone_without_the_reviewer_role_is_told_who_may_review(app, owner, evaluated):
    c = Console(app).login(owner.email)
    r = c.get(f"/jobs/{evaluated.id}/review/ei")
    assert r.status_code == 403 and "reviewer role" in _visible(_text(r))
    job_page = _text(c.get(f"/jobs/{evaluated.id}"))
    assert 'id="review-ei"' not in job_page and 'id="decision-form"' not in job_page
    assert 'id="download-package"' in job_page                       # the owner's delivery parts


# ---------------------------------------------------------------------------- figures and the gate

def test_the_job_page_shows_people_s_figures_where_their_measures_are(app, make_person, owner, evaluated, answers):
    admin = make_person("ada@example.com", "admin")
    first = make_person("rita@example.com", "reviewer")
    c = Console(app).login(admin.email)
    _review_all(first, evaluated, adapter=5, other=2, brand=4)
    seen = _visible(_text(c.get(f"/jobs/{evaluated.id}")))
    assert "Agreement (Krippendorff's alpha) needs two reviewers" in seen
    _review_all(make_person("raj@example.com", "reviewer"), evaluated, adapter=4, other=2, brand=5, low_first=False)
    html = _text(c.get(f"/jobs/{evaluated.id}"))
    seen = _visible(html)
    ei = _visible(html[html.index('data-people="emotional_intelligence"'):])
    assert re.search(r"\d+\.\d% better \[\d+\.\d, \d+\.\d\]", seen)          # the improvement and its interval
    assert "The adapter's win rate 100.0%" in ei and "of 12 preferences" in ei
    assert re.search(r"Agreement \(Krippendorff's alpha\) -?\d\.\d\d", ei)
    assert re.search(r"Average 4\.\d\d of 5 \(8\d\.\d%\)", seen)
    assert "1 answer scored under 3 on a characteristic" in seen and "Warmth 2" in seen
    assert "Reviewed by raj@example.com (6 scenarios, 23 brand-voice answers), rita@example.com" in seen


def test_an_approval_with_a_target_not_met_is_refused_until_its_reason_names_it(app, make_person, evaluated):
    admin = make_person("ada@example.com", "admin")
    c = Console(app).login(admin.email)
    page = _visible(_text(c.get(f"/jobs/{evaluated.id}")))
    assert "Quality gate" in page and "Not decided" in page and "waiting for review" in page
    r = c.post(f"/jobs/{evaluated.id}/decision", {"decision": "approved", "reason": "Looks good to me"})
    seen = _visible(_text(r))
    assert r.status_code == 400 and "Approving with a target not met needs the reason to say so" in seen
    assert "Forgetting check (financial knowledge) (not met)" in seen
    assert ">Looks good to me</textarea>" in _text(r)                        # the reason is kept
    assert c.post(f"/jobs/{evaluated.id}/decision", {"reason": "x"}).status_code == 400
    reason = ("Forgetting is at 90%, under target; emotional intelligence and brand voice are "
              "still waiting for review. Approved for the pilot.")
    r = c.post(f"/jobs/{evaluated.id}/decision", {"decision": "approved", "reason": reason})
    assert r.status_code == 302 and r.headers["Location"].endswith(f"/jobs/{evaluated.id}#delivery")
    html = _text(c.get(f"/jobs/{evaluated.id}"))
    decisions = _visible(html[html.index('id="decisions"'):])
    assert "Approved for delivery, with your reason" in _visible(html)
    assert "ada@example.com Approved" in decisions and reason in decisions
    assert "Forgetting check (financial knowledge): not met" in decisions
    db.session.expire_all()
    assert db.session.get(TrainingJob, evaluated.id).delivery_status == "approved"


def test_a_reviewer_decides_on_someone_else_s_job_from_its_delivery_page(app, reviewer, evaluated):
    c = Console(app).login(reviewer.email)
    assert c.get(f"/jobs/{evaluated.id}").status_code == 404            # not their job's page …
    page = _visible(_text(c.get(f"/jobs/{evaluated.id}/delivery")))      # … but its delivery page
    assert "Quality gate" in page and "Record the decision" in page and "Share links" not in page
    r = c.post(f"/jobs/{evaluated.id}/decision", {"decision": "rejected", "reason": "Forgetting too high."})
    assert r.status_code == 302 and r.headers["Location"].endswith(f"/jobs/{evaluated.id}/delivery")
    assert "Rejected" in _visible(_text(c.get(r.headers["Location"])))


def test_the_jobs_list_marks_approved_jobs_and_filters_on_the_decision(app, make_person, owner, small_sample, evaluated):
    other = _job(owner, small_sample, completed=True, name="second run")
    evaluated.delivery_status = "approved"
    db.session.commit()
    c = Console(app).login(owner.email)
    html = _text(c.get("/jobs"))
    assert html.count('data-delivery="approved"') == 1 and ">Approved</span>" in html
    approved = _visible(_text(c.get("/jobs?delivery=approved")))
    assert "anxious clients v3" in approved and "second run" not in approved
    undecided = _visible(_text(c.get("/jobs?delivery=none")))
    assert "second run" in undecided and "anxious clients v3" not in undecided and other.id in undecided
    assert "No job matches these filters" in _visible(_text(c.get("/jobs?delivery=rejected")))
    assert "'maybe' is not a delivery state" in _visible(_text(c.get("/jobs?delivery=maybe")))


# ---------------------------------------------------------------------------- report, links, package

def test_share_links_show_their_url_once_and_list_views_expiry_and_revocation(app, owner, evaluated):
    c = Console(app).login(owner.email)
    c.get(f"/jobs/{evaluated.id}")
    bad = c.post(f"/jobs/{evaluated.id}/share", {"expires_in_days": "120"})
    assert bad.status_code == 400 and "a link lives from 1 to 90 days, not 120" in _visible(_text(bad))
    r = c.post(f"/jobs/{evaluated.id}/share", {"expires_in_days": "7"})
    html = _text(r)
    assert r.status_code == 201 and r.headers["Cache-Control"] == "no-store"
    url = re.search(r'id="share-url"[^>]*value="([^"]+)"|value="([^"]+)" id="share-url"', html)
    url = next(u for u in url.groups() if u)
    assert "/shared/" in url or "share" in url
    assert "It works for 7 days" in _visible(html)
    page = _text(c.get(f"/jobs/{evaluated.id}"))
    assert url not in page                                           # shown once
    row = _visible(page[page.index('id="share-links"'):])
    assert "active" in row and "never" in row
    link_id = re.search(r'data-link-id="([^"]+)"', page).group(1)
    r = c.post(f"/jobs/{evaluated.id}/share/revoke", {"link_id": link_id})
    assert r.status_code == 302
    page = _text(c.get(f"/jobs/{evaluated.id}"))
    assert f'data-link-id="{link_id}" data-state="revoked"' in page and "is revoked" in _visible(page)


def test_the_report_button_downloads_the_newest_version_and_lists_the_older_ones(app, owner, evaluated):
    c = Console(app).login(owner.email)
    page = _visible(_text(c.get(f"/jobs/{evaluated.id}")))
    assert "No report yet" in page
    r = c.get(f"/jobs/{evaluated.id}/report.pdf")
    assert r.status_code == 302 and "no validation report yet" in _visible(_text(c.get(r.headers["Location"])))
    for version in (1, 2):
        key = f"{evaluated.storage_prefix}/reports/validation-report-v{version}.pdf"
        get_storage().put_bytes(key, f"%PDF-1.7 version {version}".encode())
        db.session.add(ValidationReport(training_job_id=evaluated.id, version=version, storage_key=key,
                                        size_bytes=40_000 * version, fingerprint=str(version) * 64,
                                        trigger="evaluation" if version == 1 else "reviews", build_seconds=1.5))
    db.session.commit()
    html = _text(c.get(f"/jobs/{evaluated.id}"))
    assert "Download the validation report (PDF, version 2)" in _visible(html)
    assert "Older versions (1)" in _visible(html) and f"/jobs/{evaluated.id}/report.pdf?version=1" in html
    newest = c.get(f"/jobs/{evaluated.id}/report.pdf")
    assert newest.mimetype == "application/pdf" and newest.data == b"%PDF-1.7 version 2"
    assert "validation-report-v2.pdf" in newest.headers["Content-Disposition"]
    assert c.get(f"/jobs/{evaluated.id}/report.pdf?version=1").data == b"%PDF-1.7 version 1"
    assert c.get(f"/jobs/{evaluated.id}/report.pdf?version=9").status_code == 404
    assert f"/jobs/{evaluated.id}/download/package" in html


# ---------------------------------------------------------------------------- rubrics

def test_admins_make_rubrics_that_a_new_job_picks_and_engineers_only_read_them(app, make_person, owner, small_sample):
    admin = make_person("ada@example.com", "admin")
    c = Console(app).login(admin.email)
    bad = c.post("/rubrics", {"name": "Acme voice", "characteristics": "Warmth\nCalm:"})
    seen = _visible(_text(bad))
    assert bad.status_code == 400 and "Not created: 2 problems" in seen
    assert 'line 1: write it as "Name: description"' in seen and "line 2: 'Calm' needs a description" in seen
    assert ">Warmth\nCalm:</textarea>" in _text(bad)                          # the text is kept
    r = c.post("/rubrics", {"name": "Acme voice", "client": "Acme Wealth",
                            "characteristics": "Warmth: kind and calm\nPlain words: no jargon"})
    assert r.status_code == 302
    assert "Rubric “Acme voice” created with 2 characteristics" in _visible(_text(c.get("/rubrics")))
    assert c.post("/rubrics", {"name": "Acme voice", "characteristics": "X: y"}).status_code == 409

    engineer = Console(app).login(owner.email)
    listing = _text(engineer.get("/rubrics"))
    assert "Acme voice" in listing and "Plain words" in listing and 'id="rubric-form"' not in listing
    assert engineer.post("/rubrics", {"name": "Mine", "characteristics": "A: b"}).status_code == 403
    tf = training_files.create(owner, io.BytesIO(small_sample), "sample.json")
    training_files.validate(tf.id)
    form = _text(engineer.get("/jobs/new"))
    rubric_id = re.search(r'<option value="(rub_[^"]+)"[^>]*>Acme voice \(Acme Wealth\)', form).group(1)
    r = engineer.post("/jobs", {"training_file_id": tf.id, "preset": "balanced", "pricing": "spot",
                                "gpu_type": "H100_PCIE", "base_model": "meta-llama/Meta-Llama-3-70B-Instruct",
                                "name": "for acme", "rubric_id": rubric_id, "action": "save"})
    assert r.status_code == 302, _visible(_text(r))
    assert db.session.get(TrainingJob, r.headers["Location"].rsplit("/", 1)[1]).rubric_id == rubric_id

    r = c.post("/rubrics/archive", {"rubric_id": rubric_id})
    assert r.status_code == 302 and "is archived" in _visible(_text(c.get("/rubrics")))
    assert rubric_id not in _text(engineer.get("/jobs/new"))
