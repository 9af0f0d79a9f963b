"""Browser tests: the live system (``tests/live_system.py``: the app over real HTTP, a real
RQ worker process, the local endpoint with one training worker) and a headless Chromium
driven by Playwright.

Fixtures (all function-scoped but ``browser``, which is per module):

- ``app`` (overrides the repo's): here it runs on **Postgres only** (``params=["postgres"]``;
  it requests the repo's own ``app``, which does the migrating and truncating), with
  ``MONITOR_INTERVAL_SECONDS = 1``. Every test in this directory that requests ``app``, or
  anything built on it (``client``, ``make_user``, ``auth``, ``upload``), gets this one;
  no ``parametrize`` marker is needed. Tests show up as ``test_x[postgres]``.
- ``live_app``: the same app object (the name to use in browser tests).
- ``live_endpoint``: ``LocalEndpoint`` with 1 worker process running the real handler on
  the app's storage; the app's ``RUNPOD_*`` settings point at it.
- ``live_server``: the app served by werkzeug (threaded) on 127.0.0.1 and a free port;
  yields the base URL, e.g. ``http://127.0.0.1:41234``.
- ``rq_worker``: ``python -m control.cli worker`` in a subprocess with the same database,
  Redis, queue, storage, endpoint and secret as the app; yields an ``RQWorkerProcess``
  (``.proc``, ``.name`` (its RQ name), ``.log_path``, ``.tail()``, ``.assert_alive()``).
  Its log (and the endpoint workers' logs) are printed when the test fails.
- ``live_system``: all of the above at once, as a ``LiveSystem`` (``.app``, ``.url``,
  ``.endpoint``, ``.worker``).
- ``browser`` (module): Chromium from ``/usr/bin/chromium`` (Debian's ``chromium``
  package; Playwright's own browser download is never used). Missing -> the test FAILS.
- ``page``: a fresh browser context per test (1280x800, 30 s default timeout); a screenshot
  is saved under the test's tmp_path when the test fails.
- ``login`` (fixture) / ``login(page, base_url, email, password)`` (function): sign in
  through the console's form at ``/login``.

A typical console test::

    def test_watch_a_run(live_system, page, login, make_user):
        ...create a user with a password...
        login(page, live_system.url, "ana@example.com", "secret")
        page.goto(f"{live_system.url}/jobs/...")

Tests that need no endpoint or worker ask for ``live_server`` and ``page`` alone. Use the
``login`` fixture rather than importing this module (every conftest here is "conftest").

A run a browser can watch (small_sample + tiny_model_dir, 6 steps an epoch at batch 2):
``{"num_epochs": 10, "max_steps": 60, "batch_size": 2, "gradient_accumulation_steps": 1,
"max_seq_length": 512, "checkpoint_every_steps": 20}`` trains for ~12-25 s on 2 CPU cores,
after ~9 s from start to the first step. The job row moves every monitor read (~3 s: the
1 s interval + the endpoint's stream long-poll + RQ's scheduler), so ~6-10 distinct steps.

``BROWSER_TEST_CHROMIUM`` names another Chromium binary; ``TEST_POSTGRES_URL`` (the repo's
conftest) another database, e.g. to run beside another suite on the same Postgres.
"""
from __future__ import annotations

import os
from urllib.parse import urlparse

import pytest

from tests.live_system import (_failed, live_app, live_endpoint, live_server, live_system,  # noqa: F401
                               pytest_runtest_makereport, rq_worker)

CHROMIUM = os.environ.get("BROWSER_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
VIEWPORT = {"width": 1280, "height": 800}
DEFAULT_TIMEOUT_MS = 30_000
MONITOR_INTERVAL_S = 1

# ------------------------------------------------------------------ the app, on Postgres
@pytest.fixture(params=["postgres"])
def app(app):
    """The repo's ``app`` fixture, restricted to Postgres (a subprocess worker and a server
    thread share it), with the monitor reading the stream every second."""
    from control.extensions import db
    assert db.engine.dialect.name == "postgresql", db.engine.url
    app.config["MONITOR_INTERVAL_SECONDS"] = MONITOR_INTERVAL_S
    return app


# ------------------------------------------------------------------ the browser
@pytest.fixture(scope="module")
def browser():
    """Chromium for one test module. Not for the session: Playwright's sync API keeps an
    asyncio loop running while it is open, which breaks later tests that call asyncio.run()."""
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(f"browser tests need Chromium at {CHROMIUM}: install Debian's package "
                    "(apt-get install chromium; make test does this). Playwright's own browser "
                    "download is not used.", pytrace=False)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, request, tmp_path):
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    page = context.new_page()
    # The console runs under a strict Content-Security-Policy: anything it blocks (an inline
    # script or style, a foreign source) fails the test that loaded it.
    blocked: list[str] = []
    page.on("console", lambda m: blocked.append(m.text) if "Content Security Policy" in m.text else None)
    yield page
    try:
        if _failed(request):
            shot = tmp_path / "failure.png"
            try:
                page.screenshot(path=str(shot), full_page=True)
                print(f"\n----- page at failure: {page.url}; screenshot {shot}")
            except Exception as exc:  # noqa: BLE001 (the page may be gone)
                print(f"\n----- page at failure: no screenshot ({exc})")
    finally:
        context.close()
    if blocked and not _failed(request):
        pytest.fail("the Content-Security-Policy blocked: " + "; ".join(blocked[:5]), pytrace=False)


def login(page, base_url: str, email: str, password: str, *, expect_success: bool = True) -> None:
    """Sign in through the console's form at ``/login`` (inputs ``email`` and ``password``,
    a submit button). With ``expect_success`` (the default) it fails at once, with the page's
    text, if the browser is still on ``/login`` after submitting."""
    page.goto(f"{base_url}/login")
    form = page.locator('form:has(input[name="password"])')
    form.locator('input[name="email"]').fill(email)
    form.locator('input[name="password"]').fill(password)
    with page.expect_navigation():
        form.locator('button:not([type="button"]):not([type="reset"]), input[type="submit"]').first.click()
    still_there = urlparse(page.url).path.rstrip("/") == "/login"
    if expect_success and still_there:
        raise AssertionError(f"login as {email} failed; the page says:\n{page.inner_text('body')[:2000]}")


@pytest.fixture(name="login")
def login_fixture():
    """The ``login`` function, for tests that prefer a fixture to an import."""
    return login

