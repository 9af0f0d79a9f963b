"""Blind review and delivery in a real headless Chromium against the app over HTTP on
Postgres: two reviewers score a job's emotional-intelligence scenarios and brand-voice
answers, mostly from the keyboard, seeing only "Answer A" and "Answer B"; then the job page
shows the people's measure, their agreement and the brand-voice figures, and an admin
approves the job for delivery with a reason, which the jobs list marks and filters on.

The job and its evaluation are fabricated in storage (``tests/test_console_delivery.py``):
no worker trains anything here."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from playwright.sync_api import expect

from control.extensions import db
from control.models import Review, User
from control.services import reviews, rubrics
from tests.test_console_delivery import MODEL_WORDS, neutral_answers
from tests.test_console_evaluation import _job, _store_evaluation

pytestmark = pytest.mark.slow

PASSWORD = "browser-test-password"
SHOTS = Path("/tmp/review-shots")        # copies of the screenshots, for people to look at
# What each reviewer gives the adapter's answer and the other one, criterion by criterion.
SCORES = {"first": {"adapter": "545", "other": "232"}, "second": {"adapter": "454", "other": "322"}}
BRAND = {"first": "545", "second": "454"}


def _person(email: str, role: str, user_id: str | None = None) -> User:
    user = User(email=email, role=role, **({"id": user_id} if user_id else {}))
    user.set_password(PASSWORD)
    db.session.add(user)
    db.session.commit()
    return user


def _second_reviewer(first: User, run_id: str, scenario_ids: list[str]) -> User:
    """A second reviewer whose A/B order differs from the first's on at least one scenario
    (the server derives it from the reviewer; a test cannot leave it to a 1-in-64 chance)."""
    for n in range(100):
        candidate = f"usr_second{n:06d}"
        if any(reviews.adapter_label(first.id, run_id, s) != reviews.adapter_label(candidate, run_id, s)
               for s in scenario_ids):
            return _person("raj@example.com", "reviewer", candidate)
    raise AssertionError("no second reviewer id with another A/B order")


def _shot(page, tmp_path, name: str) -> None:
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    SHOTS.mkdir(exist_ok=True)
    shutil.copy(path, SHOTS / path.name)


def _review_ei(page, base, job_id, answers, who: str, shots: Path) -> dict[str, str]:
    """Score every scenario from the keyboard; returns which label the adapter wore, by scenario."""
    page.goto(f"{base}/jobs/{job_id}/review/ei")
    adapter_label = {}
    for n in range(1, 7):
        expect(page.locator("#progress-text")).to_have_text(f"{n - 1} of 6 scored")
        html = page.content()
        assert not MODEL_WORDS.search(html), f"the review page names a model: {MODEL_WORDS.search(html)}"
        sid = page.get_attribute("input[name=item_id]", "value")
        a_text = page.inner_text("section.answer-blind:has(#answer-A-title) .answer-text")
        label = "A" if a_text == answers[sid]["adapter"] else "B"
        assert a_text in answers[sid].values() and label in ("A", "B")
        adapter_label[sid] = label
        if who == "first" and n == 1:
            _shot(page, shots, "review-ei")
        if n == 3:                                        # back to the one before, saved, and on again
            with page.expect_navigation():
                page.keyboard.press("p")
            assert page.locator("#saved-note").is_visible()
            with page.expect_navigation():
                page.keyboard.press("ArrowRight")
        mine = SCORES[who]
        keys = mine["adapter"] + mine["other"] if label == "A" else mine["other"] + mine["adapter"]
        for key in keys:                                  # 1-5 score the highlighted criterion, then move on
            page.keyboard.press(key)
        tie = who == "second" and n == 6
        page.keyboard.press("t" if tie else label.lower())
        with page.expect_navigation():
            page.keyboard.press("Enter")
    expect(page.locator("h1")).to_have_text("Emotional intelligence: all scored")
    return adapter_label


def _review_brand(page, who: str, shots: Path) -> int:
    """Score every brand-voice answer from the keyboard (the first reviewer flags one)."""
    with page.expect_navigation():
        page.click("text=Review brand voice →")
    total = int(re.search(r"of (\d+) scored", page.inner_text("#progress-text")).group(1))
    for n in range(1, total + 1):
        assert page.inner_text("#answer h2") == "Answer"
        if who == "first" and n == 1:
            _shot(page, shots, "review-brand-voice")
        keys = "255" if (who == "first" and n == 1) else BRAND[who]
        for key in keys:
            page.keyboard.press(key)
        with page.expect_navigation():
            page.keyboard.press("Enter")
    expect(page.locator("h1")).to_have_text("Brand voice: all scored")
    return total


def test_two_reviewers_score_blind_from_the_keyboard_and_an_admin_approves(
        live_server, page, login, small_sample, tmp_path):
    base = live_server
    admin = _person("ada@example.com", "admin")
    first = _person("rita@example.com", "reviewer")
    rubric = rubrics.create(admin, "Acme voice", [
        {"name": "Warmth", "description": "kind, personal and calm"},
        {"name": "Directness", "description": "answers the question early and plainly"},
        {"name": "Education first", "description": "explains the why in plain words"}], "Acme Wealth")
    job = _job(admin, small_sample, completed=True)
    job.rubric_id = rubric.id
    db.session.commit()
    _store_evaluation(job)
    answers = neutral_answers(job)
    other = _job(admin, small_sample, completed=True, name="not decided yet")
    second = _second_reviewer(first, reviews.current_run(job), sorted(answers))

    labels, brand_items = {}, 0
    for who, user in (("first", first), ("second", second)):
        login(page, base, user.email, PASSWORD)
        labels[who] = _review_ei(page, base, job.id, answers, who, tmp_path)
        brand_items = _review_brand(page, who, tmp_path)
        page.context.clear_cookies()
    assert brand_items == 23
    assert any(labels["first"][s] != labels["second"][s] for s in answers), labels

    # Stored by model, whatever label the answer wore: each reviewer's adapter scores are theirs.
    db.session.expire_all()
    rows = db.session.query(Review).filter_by(training_job_id=job.id, suite="ei").all()
    assert len(rows) == 12
    for row in rows:
        who = "first" if row.reviewer_id == first.id else "second"
        assert "".join(str(row.scores["adapter"][c]) for c in ("empathy", "clarity", "appropriateness")) \
            == SCORES[who]["adapter"]
    assert sum(r.preference == "adapter" for r in rows) == 11

    # The admin reads the measures on the job page, then approves with a reason.
    login(page, base, admin.email, PASSWORD)
    page.goto(f"{base}/jobs/{job.id}")
    ei = page.locator('[data-measure="emotional_intelligence"]')
    assert re.search(r"\d+\.\d% better \[\d+\.\d, \d+\.\d\]", ei.inner_text())
    assert re.fullmatch(r"-?\d\.\d\d", ei.locator('[data-figure="agreement"] dd').inner_text())
    assert "of 12 preferences" in ei.locator('[data-figure="win_rate"] dd').inner_text()
    brand = page.locator('[data-measure="brand_voice"]')
    assert re.fullmatch(r"4\.\d\d of 5 \(\d\d\.\d%\)", brand.locator('[data-figure="average"] dd').inner_text())
    assert "Warmth 2" in brand.locator("#flagged-answers").inner_text()
    assert page.get_attribute('[data-gate="forgetting"] [data-status]', "data-status") == "not_met"
    _shot(page, tmp_path, "job-page")

    form = page.locator("#decision-form")
    form.locator("input[value=approved]").check()
    form.locator("textarea[name=reason]").fill("Looks good to me")
    with page.expect_navigation():
        form.locator("button[type=submit]").click()
    assert "name Forgetting check (financial knowledge) (not met) in it" in page.inner_text("#decision-error")
    assert page.input_value("#decision-form textarea[name=reason]") == "Looks good to me"
    _shot(page, tmp_path, "decision-refused")
    page.fill("#decision-form textarea[name=reason]",
              "Forgetting check at 90% is under its target; accepted for the Acme pilot.")
    with page.expect_navigation():
        page.click("#decision-form button[type=submit]")
    expect(page.locator("#delivery-status")).to_have_text("Approved")
    assert "accepted for the Acme pilot" in page.inner_text("#decisions")
    page.locator("#delivery").screenshot(path=str(tmp_path / "delivery-approved.png"))
    shutil.copy(tmp_path / "delivery-approved.png", SHOTS / "delivery-approved.png")

    # The jobs list marks it, and filters on it.
    page.goto(f"{base}/jobs")
    expect(page.locator(f'tr[data-job-id="{job.id}"] [data-delivery="approved"]')).to_have_text("Approved")
    assert page.locator(f'tr[data-job-id="{other.id}"] [data-delivery]').count() == 0
    page.select_option("select[name=delivery]", "approved")
    with page.expect_navigation():
        page.click("form.filters button[type=submit]")
    assert page.locator("#jobs tbody tr").count() == 1
    assert page.get_attribute("#jobs tbody tr", "data-job-id") == job.id
    _shot(page, tmp_path, "jobs-approved")
    page.click("text=Rubrics")
    assert "Acme Wealth" in page.inner_text(f'[data-rubric="{rubric.id}"]')
    _shot(page, tmp_path, "rubrics")
