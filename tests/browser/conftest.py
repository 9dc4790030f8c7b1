"""Browser tests: Playwright (sync API) driving Debian's Chromium against a live server.

Shared by every test under ``tests/browser/``:

* ``live_server`` is pytest-django's: the test settings site (``tests.settings``, whose
  ``INSTALLED_APPS`` has ``django.contrib.staticfiles``, so the admin's and Swagger UI's static
  files are served) in a thread on a free port, with a transactional database the test reads to
  assert what the browser did.
* ``browser`` is one headless Chromium per session, the system's (``/usr/bin/chromium``, or
  ``$CHROMIUM``); Playwright never downloads a browser here.
* ``page`` is a fresh browser context (no cookies) whose every request to a host other than the
  live server (and the ``other_origins`` a test names) is aborted and recorded in
  ``external_requests``: the tests need no network, and a
  page that tries to load something from the internet is a defect the tests can assert on.
* a test that fails leaves a screenshot of its page in its ``tmp_path`` (the path is printed).
* ``login(username, password)`` (a fixture returning a function) signs ``page`` in through the
  admin's login form.

Without Chromium the tests are skipped, saying so, unless ``REQUIRE_BROWSER=1`` (set by
``.ci/run``, which installs the ``chromium`` package first): then a missing browser fails them.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect, sync_playwright

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
#: Milliseconds a locator or navigation waits before failing; generous for a loaded 2-core machine.
TIMEOUT_MS = 15_000

# Playwright's sync API runs an asyncio loop in this thread, and Django refuses ORM calls
# from a thread with a running loop (SynchronousOnlyOperation). The tests' ORM calls are
# ordinary blocking calls made between browser steps, never from inside the loop, so the
# guard is switched off for this test process only.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).resolve().parent
    for item in items:
        if here in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.browser)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    # Keeps each phase's report on the item, so the page fixture knows whether the test failed.
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"report_{report.when}", report)


def _chromium() -> str:
    path = shutil.which(CHROMIUM) or (CHROMIUM if os.access(CHROMIUM, os.X_OK) else None)
    if path is None:
        reason = f"Chromium not found at {CHROMIUM} (apt-get install -y chromium, or set CHROMIUM=/path)"
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail(f"REQUIRE_BROWSER=1 but {reason}", pytrace=False)
        pytest.skip(reason)
    return path


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    executable = _chromium()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable,
            headless=True,
            # Containers and CI run as root, where Chromium's sandbox cannot start.
            chromium_sandbox=False,
            args=["--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check"],
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def external_requests() -> list[str]:
    """URLs the page tried to load from anywhere but the live server (each was aborted)."""
    return []


@pytest.fixture
def other_origins() -> list[str]:
    """Hosts (``host:port``) besides the live server that the page may load from; a test
    overrides it for another loopback server it started (an identity provider, say)."""
    return []


@pytest.fixture
def page(request, browser, live_server, external_requests, other_origins, tmp_path) -> Iterator[object]:
    allowed = {urlsplit(live_server.url).netloc, *other_origins}
    context = browser.new_context(base_url=live_server.url, locale="en-US", timezone_id="UTC")
    context.set_default_timeout(TIMEOUT_MS)
    context.set_default_navigation_timeout(TIMEOUT_MS)
    expect.set_options(timeout=TIMEOUT_MS)

    def route(route) -> None:
        url = route.request.url
        parts = urlsplit(url)
        if parts.scheme in ("data", "blob") or parts.netloc in allowed:
            route.continue_()
        else:
            external_requests.append(url)
            route.abort("internetdisconnected")

    context.route("**/*", route)
    page = context.new_page()
    try:
        yield page
        report = getattr(request.node, "report_call", None)
        if report is not None and report.failed:
            shot = tmp_path / "failure.png"
            page.screenshot(path=str(shot), full_page=True)
            print(f"screenshot of the failing page ({page.url}): {shot}")
    finally:
        context.close()


@pytest.fixture
def login(page, live_server):
    """A function signing ``page`` in through the admin's own login form."""

    def sign_in(username: str, password: str) -> None:
        page.goto("/admin/login/?next=/admin/")
        page.fill("#id_username", username)
        page.fill("#id_password", password)
        page.click("#login-form [type=submit]")
        page.wait_for_url(f"{live_server.url}/admin/")

    return sign_in
