"""Headless Chromium for the page tests (Debian `chromium` + `chromium-driver`, which the Makefile
installs). Selenium is blocking: callers run their session in a thread so the server under test,
in the test's event loop, keeps serving."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver
    from selenium.webdriver.support.ui import WebDriverWait

CHROMEDRIVER = "/usr/bin/chromedriver"

requires_chromium = pytest.mark.skipif(
    not (Path(CHROMEDRIVER).exists() and (shutil.which("chromium") or shutil.which("chromium-browser"))),
    reason="Debian packages chromium and chromium-driver are not installed",
)


# A microphone without a prompt: Chromium's fake capture device (a beep) granted to every page.
FAKE_MICROPHONE = ("--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream")


@contextmanager
def headless_chromium(
    prefix: str, *, extra_args: tuple[str, ...] = ()
) -> Iterator[tuple[WebDriver, WebDriverWait[WebDriver]]]:
    """A fresh browser profile, a driver and a 30 s wait that ignores stale elements.

    ``extra_args``: more Chromium flags, e.g. ``FAKE_MICROPHONE`` for a page that records."""
    from selenium import webdriver
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.support.ui import WebDriverWait

    profile = tempfile.mkdtemp(prefix=f"{prefix}-chromium-")
    options = webdriver.ChromeOptions()
    # No background networking, updates or sync: this machine's network is closed, and Chromium
    # would otherwise try (and fail) to reach Google's hosts at every start.
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
        *extra_args,
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        yield driver, WebDriverWait(driver, 30, ignored_exceptions=(StaleElementReferenceException,))
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def click_when_ready(wait: WebDriverWait[WebDriver], element_id: str) -> None:
    """Click the element once it is displayed and enabled (pages re-render while they poll)."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By

    def attempt(d: WebDriver) -> bool:
        try:
            el = d.find_element(By.ID, element_id)
            if not (el.is_displayed() and el.is_enabled()):
                return False
            el.click()
            return True
        except StaleElementReferenceException:
            return False

    wait.until(attempt)
