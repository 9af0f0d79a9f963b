"""User admin, the audit trail and the team view in a real headless Chromium against the app
over HTTP on Postgres: an admin creates a user and copies the one-time link shown once; the
new user, in a browser of their own, chooses a password with it and signs in; the admin
deactivates them, and their open page goes to the sign-in page at their next click; the
audit page lists what happened and filters it; the team page shows the month's numbers.

The finished jobs are rows (``tests/finished_runs.py``): no worker trains anything here.
Screenshots are copied to /tmp/shots/ for people to look at."""
from __future__ import annotations

import re
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.sync_api import expect

from control.extensions import db
from control.models import TrainingJob, utcnow
from tests.finished_runs import seed_finished_runs

pytestmark = pytest.mark.slow

PASSWORD = "browser-test-password"
NEW_PASSWORD = "nias-own-password"
SHOTS = Path("/tmp/shots")        # copies of the screenshots, for people to look at


def _shot(page, tmp_path, name: str) -> None:
    path = tmp_path / f"audit_{name}.png"
    page.screenshot(path=str(path), full_page=True)
    SHOTS.mkdir(exist_ok=True)
    shutil.copy(path, SHOTS / path.name)


def test_an_admin_invites_a_user_who_sets_a_password_then_is_deactivated_and_it_is_all_on_the_trail(
        live_server, page, browser, login, make_person, tmp_path):
    base = live_server
    make_person("boss@example.com", "admin", PASSWORD)
    dev = make_person("dev@example.com", "engineer", PASSWORD)
    job_ids = seed_finished_runs(None, dev, n=3)
    for job_id in job_ids:                  # made this month, whatever day of it today is
        db.session.get(TrainingJob, job_id).created_at = utcnow() - timedelta(minutes=30)
    db.session.commit()
    login(page, base, "boss@example.com", PASSWORD)

    # The admin creates Nia; the link is shown once, on this answer.
    page.goto(f"{base}/users")
    form = page.locator("#create-user form")
    form.locator("input[name=email]").fill("nia@example.com")
    form.locator("select[name=role]").select_option("reviewer")
    with page.expect_navigation():
        form.locator("button[type=submit]").click()
    link = page.locator("#password-link").input_value()
    assert re.fullmatch(rf"{re.escape(base)}/set-password/[\w-]{{40,}}", link), link
    row = page.locator('tr[data-email="nia@example.com"]')
    expect(row).to_have_attribute("data-status", "invited")
    _shot(page, tmp_path, "users")

    # Nia, in a browser of her own, sets her password with it and signs in.
    nia_context = browser.new_context(viewport={"width": 1280, "height": 800})
    nia = nia_context.new_page()
    try:
        nia.goto(link)
        expect(nia.locator("#set-password")).to_contain_text("nia@example.com")
        _shot(nia, tmp_path, "set_password")
        nia.locator("input[name=password]").fill(NEW_PASSWORD)
        nia.locator("input[name=confirm]").fill(NEW_PASSWORD)
        with nia.expect_navigation():
            nia.locator("#set-password button[type=submit]").click()
        expect(nia.locator(".flash-ok")).to_contain_text("Your password is set")
        login(nia, base, "nia@example.com", NEW_PASSWORD)
        expect(nia.locator("header.top nav")).to_contain_text("Team")
        expect(nia.locator("header.top nav")).not_to_contain_text("Audit")
        nia.goto(link)                                    # once only
        expect(nia.locator("#link-refused")).to_contain_text("used already")
        nia.goto(f"{base}/team")

        # The admin deactivates her: her next click lands on the sign-in page.
        page.goto(f"{base}/users")
        with page.expect_navigation():
            page.locator('tr[data-email="nia@example.com"] button.danger').click()
        expect(page.locator(".flash-ok")).to_contain_text("nia@example.com is deactivated")
        with nia.expect_navigation():
            nia.locator("header.top nav a", has_text="Jobs").click()
        assert nia.url.startswith(f"{base}/login"), nia.url
    finally:
        nia_context.close()

    # The trail: every step, newest first, filtered to users.
    page.goto(f"{base}/audit")
    entries = page.locator("#audit-entries tbody tr")
    expect(entries.first).to_have_attribute("data-action", "user.deactivated")
    page.locator("select[name=action]").select_option("user.")
    with page.expect_navigation():
        page.locator("form.filters button[type=submit]").click()
    actions = [entries.nth(i).get_attribute("data-action") for i in range(entries.count())]
    assert actions == ["user.deactivated", "user.password_set", "user.password_link_created", "user.created"]
    _shot(page, tmp_path, "trail")

    # The team: Dev's three completed runs this month, every one a success.
    page.goto(f"{base}/team")
    dev_row = page.locator('#team tr[data-email="dev@example.com"]')
    expect(dev_row.locator('[data-figure="jobs"]')).to_have_text("3")
    expect(dev_row.locator('[data-figure="success"]')).to_contain_text("100%")
    expect(dev_row.locator('[data-figure="spent"]')).to_have_text("$4.50")
    _shot(page, tmp_path, "team")

    # A job page's Activity.
    page.goto(f"{base}/jobs/{job_ids[0]}")
    with page.expect_download():
        page.locator('a[href$="/download/metrics.csv"]').first.click()
    page.reload()
    expect(page.locator("#activity")).to_contain_text("downloaded the metrics")
    page.locator("#activity").scroll_into_view_if_needed()
    page.locator("#activity").screenshot(path=str(tmp_path / "audit_activity.png"))
    shutil.copy(tmp_path / "audit_activity.png", SHOTS / "audit_activity.png")
