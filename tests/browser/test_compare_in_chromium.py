"""Comparing runs in a real headless Chromium against the app over HTTP on Postgres: tick
three finished jobs in the jobs list (the button says how many until 2 to 4 are ticked),
compare them, see every run's training loss, validation loss and learning rate overlaid (one
Chart.js dataset per run on each chart), the best value of each row highlighted with its
star, and export the PDF.

The three runs are rows (``tests/finished_runs.py``): nothing trains here."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from playwright.sync_api import expect

from control.extensions import db
from control.models import User
from tests.finished_runs import seed_finished_runs, training_file

pytestmark = pytest.mark.slow

PASSWORD = "browser-test-password"
SHOTS = Path("/tmp/shots")          # copies of the screenshots, for people to look at
GREEN = "rgb(220, 252, 231)"        # compare.css: a best cell's background


def _shot(page, tmp_path, name: str) -> None:
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    SHOTS.mkdir(exist_ok=True)
    shutil.copy(path, SHOTS / path.name)


def test_tick_three_jobs_compare_them_and_export_the_pdf(live_server, page, login, tmp_path):
    user = User(email="ana@example.com", role="engineer")
    user.set_password(PASSWORD)
    db.session.add(user)
    db.session.commit()
    ids = seed_finished_runs(None, user, n=4)[:3]          # the fourth stays unticked
    base = live_server
    login(page, base, "ana@example.com", PASSWORD)

    page.goto(f"{base}/jobs")
    button, hint = page.locator("#compare-selected"), page.locator("#compare-hint")
    expect(button).to_be_disabled()
    page.check(f'input[name="ids"][value="{ids[0]}"]')
    expect(hint).to_have_text("1 ticked: tick 1 more (2 to 4).")
    expect(button).to_be_disabled()
    for job_id in ids[1:]:
        page.check(f'input[name="ids"][value="{job_id}"]')
    expect(hint).to_have_text("3 ticked: ready to compare.")
    expect(button).to_be_enabled()
    _shot(page, tmp_path, "compare_list")
    with page.expect_navigation():
        button.click()
    assert "/jobs/compare?" in page.url and all(f"ids={i}" in page.url for i in ids)
    expect(page.locator("h1")).to_have_text("Compare 3 runs")

    # the runs in the list's order (newest first), as the form sends the ticked boxes
    order = ["run C", "run B", "run A"]
    # every chart: one dataset per run, each with its points
    page.wait_for_function("document.querySelectorAll('canvas[data-curve]').length === 3 && "
                           "[...document.querySelectorAll('canvas[data-curve]')].every(c => window.Chart.getChart(c))")
    charts = page.evaluate("""() => Object.fromEntries([...document.querySelectorAll('canvas[data-curve]')].map(c =>
        [c.dataset.curve, window.Chart.getChart(c).data.datasets.map(d => [d.label, d.data.length, d.borderColor])]))""")
    assert set(charts) == {"training_loss", "validation_loss", "learning_rate"}
    for curve, datasets in charts.items():
        assert [d[0] for d in datasets] == order, curve
        assert all(d[1] == (6 if curve == "validation_loss" else 60) for d in datasets), (curve, datasets)
        assert len({d[2] for d in datasets}) == 3, f"{curve}: one colour per run"

    # the best value of each row: highlighted (class, colour) and starred
    table = page.locator("#compare-table")
    expected = {"perplexity": ["run B"], "final_training_loss": ["run B"], "cost": ["run C"],
                "duration": ["run C"], "tokens_per_second": ["run C"], "interruptions": ["run A", "run C"],
                "gate": ["run A"], "emotional_intelligence": []}
    names = table.locator("thead th.run-0, thead th.run-1, thead th.run-2").all_inner_texts()
    assert [n.strip() for n in names] == order
    for row_id, best in expected.items():
        cells = table.locator(f'tr[data-row="{row_id}"] td[data-job-id]')
        marked = [i for i in range(3) if "best" in (cells.nth(i).get_attribute("class") or "").split()]
        assert sorted(order[i] for i in marked) == best, row_id
        for i in marked:
            expect(cells.nth(i)).to_contain_text("★ best")
            assert cells.nth(i).evaluate("c => getComputedStyle(c).backgroundColor") == GREEN
    every_row = table.locator("tbody tr")
    rows_with_best = [r for r in range(every_row.count()) if every_row.nth(r).locator("td.best").count()]
    assert len(rows_with_best) >= 9
    expect(page.locator('#config-differences tr[data-field="hyperparameters.learning_rate"]')).to_contain_text("0.0005")
    expect(page.locator("#dataset-notice")).to_have_count(0)
    page.locator('a.run-name:text("run B")').wait_for()
    assert page.get_attribute('a.run-name:text("run B")', "href") == f"/jobs/{ids[1]}"
    assert page.get_attribute('a.run-name:text("run C")', "href") == f"/jobs/{ids[2]}"
    _shot(page, tmp_path, "compare_page")

    with page.expect_download() as download:
        page.click("#export-pdf")
    pdf = Path(download.value.path()).read_bytes()
    assert pdf.startswith(b"%PDF") and len(pdf) > 10_000
    assert download.value.suggested_filename.startswith("comparison-") and \
        download.value.suggested_filename.endswith(".pdf")


def test_a_narrow_screen_and_runs_of_two_datasets(live_server, page, login, tmp_path):
    """A phone's width: the page still reads (the tables scroll sideways), and the notice
    says the datasets differ."""
    user = User(email="ana@example.com", role="engineer")
    user.set_password(PASSWORD)
    db.session.add(user)
    db.session.commit()
    ids = seed_finished_runs(None, user, n=2) + seed_finished_runs(
        None, user, n=1, file=training_file(user, "northwind-support.json"), first=3)
    login(page, live_server, "ana@example.com", PASSWORD)
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_server}/jobs/compare?ids={','.join(ids)}")
    expect(page.locator("#dataset-notice")).to_contain_text("different datasets")
    expect(page.locator("#dataset-notice")).to_contain_text("northwind-support.json")
    page.wait_for_function("[...document.querySelectorAll('canvas[data-curve]')].every(c => window.Chart.getChart(c))")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 400, f"the page is {width}px wide on a 390px screen: something does not wrap or scroll"
    _shot(page, tmp_path, "compare_phone")
