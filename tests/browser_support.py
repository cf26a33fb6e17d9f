"""A real headless Chromium (Debian ``chromium`` + ``chromium-driver``, driven through Selenium) for the
published-site test. ``make test`` installs it (``containers/chromium.sh``) and sets
``VSBENCH_REQUIRE_BROWSER=1``, so a missing browser fails there; elsewhere the test skips."""

from __future__ import annotations

import os
import shutil

import pytest


@pytest.fixture(scope="session")
def browser(tmp_path_factory):
    """A Selenium WebDriver of headless Chromium that keeps the page's console log (``get_log("browser")``)."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    problem = None
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        problem = "selenium is not installed"
    if problem is None and (chromium is None or driver_path is None):
        problem = "chromium or chromedriver is not installed (containers/chromium.sh)"
    if problem:
        if os.environ.get("VSBENCH_REQUIRE_BROWSER", "") not in ("", "0"):
            pytest.fail(problem + "; VSBENCH_REQUIRE_BROWSER=1")
        pytest.skip(problem)
    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--window-size=1300,2400",
                f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(arg)
    options.binary_location = chromium
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    yield driver
    driver.quit()
