"""Templates and inline notes in a real headless Chromium against the app over HTTP on
Postgres: from a finished job's page an engineer saves its settings as a template, finds it
on the Templates page, starts a new job from it (the form filled in with the template's
preset and overrides), saves the job, and its page names the template; then the notes and
tags are edited inline on that page and the jobs list's search finds them.

The finished jobs are rows (``tests/finished_runs.py``): no worker trains anything here."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from playwright.sync_api import expect

from control.extensions import db
from control.models import TrainingJob, User
from tests.finished_runs import seed_finished_runs, training_file

pytestmark = pytest.mark.slow

PASSWORD = "browser-test-password"
SHOTS = Path("/tmp/shots")            # copies of the screenshots, for people to look at


def _shot(page, tmp_path, name: str) -> None:
    path = tmp_path / f"templates_{name}.png"
    page.screenshot(path=str(path), full_page=True)
    SHOTS.mkdir(exist_ok=True)
    shutil.copy(path, SHOTS / path.name)


def test_save_a_finished_job_as_a_template_and_start_a_new_job_from_it(app, live_server, page, login, tmp_path):
    ana = User(email="ana@example.com", role="engineer")
    ana.set_password(PASSWORD)
    db.session.add(ana)
    db.session.commit()
    dataset = training_file(ana)
    dataset.statistics = {**dataset.statistics, "tokens": {"folded": 60_000}}   # what an estimate reads
    run_a, run_b, _ = seed_finished_runs(app, ana, n=3, file=dataset)
    login(page, live_server, "ana@example.com", PASSWORD)

    # Run B (aggressive, lr 5e-4, r 32) is the best: save it as a template from its page.
    page.goto(f"{live_server}/jobs/{run_b}")
    page.click("#save-template")
    expect(page.locator("#template-settings")).to_contain_text("aggressive preset")
    expect(page.locator("#template-settings")).to_contain_text("learning_rate 0.0005, lora_r 32")
    page.fill("#template-form input[name=name]", "Harbor lane · aggressive")
    page.fill("#template-form textarea[name=description]", "Best perplexity gain of the three runs (38%).")
    _shot(page, tmp_path, "save")
    with page.expect_navigation():
        page.click("#template-form button[type=submit]")
    row = page.locator("tr[data-template-id]", has_text="Harbor lane · aggressive")
    expect(row).to_be_visible()
    expect(row.locator("[data-field=uses]")).to_have_text("0 jobs")
    expect(page.locator("tr[data-preset=aggressive] [data-share]")).to_have_text("100%")   # run B: 38.2%
    expect(page.locator("tr[data-preset=conservative] [data-share]")).to_have_text("0%")   # run C: 24.0%
    _shot(page, tmp_path, "list")

    # Start a new job from it: the form comes filled in with the template's settings.
    with page.expect_navigation():
        row.locator("[data-action=use]").click()
    expect(page.locator("#from-template")).to_contain_text("Harbor lane · aggressive")
    expect(page.locator("input[name=preset][value=aggressive]")).to_be_checked()
    expect(page.locator("input[name=learning_rate]")).to_have_value("0.0005")
    expect(page.locator("input[name=lora_r]")).to_have_value("32")
    expect(page.locator("#template-picker select")).to_have_value(page.locator("input[name=template_id]")
                                                                   .get_attribute("value"))
    page.select_option("select[name=training_file_id]", dataset.id)
    page.fill("input[name=name]", "harbor lane, from the template")
    expect(page.locator("[data-estimate=cost]")).to_contain_text("$")            # the live estimate
    _shot(page, tmp_path, "new_job")
    with page.expect_navigation():
        page.click("#estimate button[type=submit]")                            # Review
    with page.expect_navigation():
        page.click("#review-form button[value=save]")                          # Save without starting
    expect(page.locator("#job-template")).to_contain_text("from the template Harbor lane · aggressive")
    new_id = page.locator("#job").get_attribute("data-job-id")
    new = db.session.get(TrainingJob, new_id)
    assert (new.preset, new.configuration["overrides"], new.template_id is not None) == \
        ("aggressive", {"learning_rate": 0.0005, "lora_r": 32}, True)

    # Notes and tags, inline on the job page, then found by the list's search.
    page.fill("#edit-job textarea[name=notes]", "Same recipe as run B, on the new export.")
    page.fill("#edit-job input[name=tags]", "harbor-lane, from-template")
    with page.expect_navigation():
        page.click("#edit-job button[type=submit]")
    expect(page.locator(".flash-ok")).to_contain_text("notes, tags changed")
    expect(page.locator("#edit-job textarea[name=notes]")).to_have_value("Same recipe as run B, on the new export.")
    page.locator("#about").scroll_into_view_if_needed()
    _shot(page, tmp_path, "job")
    page.goto(f"{live_server}/jobs?q=from-template")
    expect(page.locator(f'a[href="/jobs/{new_id}"]')).to_be_visible()
    expect(page.locator(f'a[href="/jobs/{run_a}"]')).to_have_count(0)

    page.goto(f"{live_server}/templates")
    expect(page.locator("tr[data-template-id] [data-field=uses]")).to_have_text("1 job")
