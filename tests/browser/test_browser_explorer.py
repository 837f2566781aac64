"""The explorer in a real browser (Debian chromium + Playwright), one server for all tests."""
from __future__ import annotations

from browser_helpers import assert_no_exception, open_page, shot


def test_home_loads_with_its_title_and_no_exception(page, app_server):
    open_page(page, app_server.url)
    page.get_by_role("heading", name="synthmed").first.wait_for()
    assert_no_exception(page)
    shot(page, "home")
