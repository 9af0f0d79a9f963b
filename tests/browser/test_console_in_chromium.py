"""The console in a real headless Chromium against the whole running system: the app over
HTTP on Postgres, an RQ worker process, the local endpoint and a real runpod worker training
a tiny model. One engineer's day: sign in, upload (a broken file, then the sample), create a
job, watch it train, download the adapter, then start a second job and cancel it."""
from __future__ import annotations

import io
import json
import re
import time
import zipfile

import pytest
from playwright.sync_api import expect

from control.extensions import db
from control.models import JobAttempt, TrainingJob

pytestmark = pytest.mark.slow

PASSWORD = "browser-test-password"
# ~60 steps of a tiny Llama: 12-25 s of training on 2 cores, several monitor reads long.
WATCHABLE = {"num_epochs": "10", "max_steps": "60", "batch_size": "2", "gradient_accumulation_steps": "1",
             "max_seq_length": "512", "checkpoint_every_steps": "20", "max_new_tokens": "8"}
XSS_NAME = 'run <img src=x onerror="window.__xss=1">'


@pytest.fixture
def engineer(live_app, make_person):
    return make_person(password=PASSWORD)


def _fill_job_form(page, tiny_model_dir, name, settings):
    page.click("#advanced > summary")                          # the advanced section
    page.fill("input[name=base_model]", tiny_model_dir)
    page.select_option("select[name=method]", "lora")
    page.select_option("select[name=gpu_type]", "LOCAL_CPU")
    page.check("input[name=pricing][value=on_demand]")
    for field, value in settings.items():
        page.fill(f"input[name={field}]", value)
    page.fill("input[name=name]", name)
    page.fill("textarea[name=notes]", "notes <b>kept as text</b>")


def _watch(page, until_status: str, timeout_s: float) -> list[tuple[float, int]]:
    """Read the progress bar and the loss chart's point count until the job page says
    ``until_status``; the page reloads itself when the job ends, so reads may fail midway."""
    seen = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            status = page.get_attribute("#job", "data-status", timeout=2000)
            bar = float(page.get_attribute("#progress .bar", "aria-valuenow", timeout=2000))
            points = int(page.get_attribute("#loss-chart", "data-points", timeout=2000))
        except Exception:                       # noqa: BLE001 (the page is reloading)
            time.sleep(0.2)
            continue
        seen.append((bar, points))
        if status == until_status:
            return seen
        time.sleep(0.3)
    raise AssertionError(f"the job page did not reach {until_status} in {timeout_s} s; saw {seen[-5:]}")


def test_an_engineer_trains_watches_downloads_and_cancels_in_the_browser(
        live_system, page, login, engineer, small_sample, sample_doc, tiny_model_dir, tmp_path):
    base = live_system.url
    login(page, base, "ana@example.com", PASSWORD)
    assert page.url.endswith("/jobs") and "No jobs yet" in page.inner_text("main")

    # A broken file: its page shows the validation, then every problem with its place.
    del sample_doc["conversations"][1]["training_pairs"][0]["target_response"]
    page.click("text=Training files")
    page.set_input_files("input[name=file]", files=[{
        "name": "broken.json", "mimeType": "application/json", "buffer": json.dumps(sample_doc).encode()}])
    page.click("form.upload button[type=submit]")
    problems = page.locator("#validation-problems")
    problems.wait_for()                          # the page reloads itself when the task is done
    assert "broken.json is invalid" in problems.inner_text()
    assert 'conversation 2 (id "conv-002") > pair 1' in problems.inner_text()
    assert "target_response" in problems.inner_text()

    # The sample: stored, validated, with its statistics.
    page.click("text=Training files")
    page.set_input_files("input[name=file]", files=[{
        "name": "sample.json", "mimeType": "application/json", "buffer": small_sample}])
    page.click("form.upload button[type=submit]")
    page.wait_for_selector("#file-stats")
    assert page.locator("#file-stats .stat:has-text('Conversations') strong").inner_text() == "8"

    # A job on the tiny model: the estimate follows the form, then review and start.
    page.click("text=New job with this file")
    page.wait_for_selector("#job-form")
    _fill_job_form(page, tiny_model_dir, XSS_NAME, WATCHABLE)
    # Waits by locator, not by page.wait_for_function: that evaluates a string, which the
    # console's Content-Security-Policy (no 'unsafe-eval') rightly refuses.
    expect(page.locator("[data-estimate=status]")).to_have_text(re.compile(r"^Updates"))
    assert page.inner_text("[data-estimate=cost]").startswith("$0.00")   # the local CPU is free
    page.click("#estimate button[type=submit]")
    page.wait_for_selector("#review-form")
    assert "batch_size: 4 → 2" in page.inner_text("#changes")
    page.click("button[value=start]")
    page.wait_for_selector("#job")
    job_id = page.get_attribute("#job", "data-job-id")

    # Watch it: the progress bar and the loss curve move without a reload, then it completes.
    seen = _watch(page, "completed", timeout_s=240)
    moving = sorted({bar for bar, _ in seen if 10 < bar < 100})
    assert len(moving) >= 2, f"the progress bar never moved mid-training: {seen}"
    grown = sorted({points for _, points in seen if points > 0})
    assert len(grown) >= 2, f"the loss curve never grew while watched: {seen}"
    assert page.locator("#stages [data-state=done]").count() == 5
    assert "better" in page.inner_text("#evaluation") or "worse" in page.inner_text("#evaluation")
    assert "step 60 of 60" in page.inner_text("#progress")
    assert page.evaluate("window.__xss") is None                 # the name was shown as text
    assert XSS_NAME in page.inner_text("h1")

    # Download the adapter.
    with page.expect_download() as info:
        page.click("#download-adapter")
    path = tmp_path / "adapter.zip"
    info.value.save_as(path)
    names = zipfile.ZipFile(io.BytesIO(path.read_bytes())).namelist()
    assert "README.md" in names and "adapter/adapter_model.safetensors" in names

    # A second job, started from the first (retry pre-fills it), then cancelled while it trains.
    page.click("#retry-job")
    page.wait_for_selector("#job-form")
    assert page.get_attribute("#advanced", "open") is not None   # it shows the settings it re-uses
    assert page.input_value("input[name=base_model]") == tiny_model_dir
    page.fill("input[name=max_steps]", "5000")
    page.fill("input[name=num_epochs]", "100")
    page.fill("input[name=name]", "to cancel")
    page.click("#estimate button[type=submit]")
    page.click("button[value=start]")
    page.wait_for_selector("#job")
    second = page.get_attribute("#job", "data-job-id")
    assert second != job_id
    expect(page.locator("#job")).to_have_attribute("data-status", "training", timeout=120_000)

    # The list shows both, and the running one's row moves without a reload.
    page.click("nav >> text=Jobs")
    row = page.locator(f'tr[data-job-id="{second}"]')
    first_steps = row.locator('[data-field="steps"]').inner_text()
    expect(row.locator('[data-field="steps"]')).not_to_have_text(first_steps, timeout=60_000)
    assert page.get_attribute(f'tr[data-job-id="{job_id}"] .badge', "data-status") == "completed"

    page.click(f'tr[data-job-id="{second}"] a')
    page.click("#cancel-job")
    assert "Training stops and no further cost accrues" in page.inner_text("main")
    page.click("text=Yes, cancel it")
    expect(page.locator("#job")).to_have_attribute("data-status", "cancelled", timeout=60_000)
    assert "cancel" in page.locator("#job [data-live=badge]").inner_text().lower()

    db.session.expire_all()
    job = db.session.get(TrainingJob, second)
    assert job.status == "cancelled" and job.current_step < 5000
    attempts = db.session.query(JobAttempt).filter_by(training_job_id=second).all()
    assert attempts and all(a.ended_at is not None for a in attempts)     # nothing left billing
    live_system.endpoint.wait_idle(timeout_s=60)     # the cancelled job's worker was stopped
