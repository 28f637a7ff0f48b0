"""The console in a real headless browser (Debian's chromium + chromium-driver through selenium): the board's
entity rows, an entity page with its chart drawn and its alert listed, the alert list, the pipeline page.
Screenshots go to the artefacts folder (tests/console/conftest.py)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from sentimon.console import serve_in_background
from sentimon.core.host import free_port
from tests.console.conftest import NEG_TEXT, artefacts_dir

pytestmark = pytest.mark.integration

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


@pytest.fixture
def browser() -> Iterator:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    for path, package in ((CHROMIUM, "chromium"), (DRIVER, "chromium-driver")):
        if not shutil.which(path):
            pytest.fail(f"{path} not found: install the Debian package {package} (infra/bootstrap.sh does)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,900"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_page_load_timeout(20)
    try:
        yield driver
    finally:
        driver.quit()


def wait(driver, condition, timeout_s: float = 15):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout_s, poll_frequency=0.1).until(condition)


def test_board_entity_page_alerts_and_status_in_a_real_browser(seeded, browser) -> None:
    from selenium.webdriver.common.by import By

    alerted, calm, third = seeded.entities
    url, stop = serve_in_background(seeded.settings, "127.0.0.1", free_port())
    out = artefacts_dir()
    try:
        browser.get(url)
        rows = wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#board tr.entity-row"))
        names = [r.get_attribute("data-entity") for r in rows]
        assert {alerted, calm, third} <= set(names)
        assert names[0] == alerted  # the firing one leads
        first = rows[0].find_elements(By.TAG_NAME, "td")
        assert int(first[5].text) > int(first[1].text) > 0  # 24 h mentions cover the last hour's
        assert "opinion/negative_share" in rows[0].text
        assert rows[0].find_element(By.CSS_SELECTOR, "svg.spark polyline")
        browser.save_screenshot(str(out / "console-board.png"))

        rows[0].find_element(By.TAG_NAME, "a").click()
        wait(browser, lambda d: d.current_url.endswith("/entity/" + alerted))
        chart = wait(browser, lambda d: d.find_element(By.CSS_SELECTOR, "#chart[data-rendered]"))
        assert int(chart.get_attribute("data-rendered")) > 10  # points on the time axis
        canvas = chart.find_element(By.TAG_NAME, "canvas")
        assert canvas.size["width"] > 400 and canvas.size["height"] > 200
        alert_rows = browser.find_elements(By.CSS_SELECTOR, "#entity-alerts tr.alert-row")
        assert len(alert_rows) == 1
        assert "firing" in alert_rows[0].text and "opinion/negative_share" in alert_rows[0].text
        # Example posts come from the scored topic, read by the console's tail thread.
        wait(browser, lambda d: NEG_TEXT in d.find_element(By.CSS_SELECTOR, "ul.examples-negative").text)
        terms = browser.find_element(By.CSS_SELECTOR, ".terms").text
        assert "brakes" in terms
        browser.save_screenshot(str(out / "console-entity.png"))

        browser.get(url.rstrip("/") + f"/alerts?entity={alerted}")
        listed = wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#alerts tr.alert-row"))
        assert len(listed) == 1 and alerted in listed[0].text
        listed[0].find_element(By.TAG_NAME, "summary").click()
        assert '"direction": "up"' in listed[0].find_element(By.TAG_NAME, "pre").text
        browser.save_screenshot(str(out / "console-alerts.png"))
        browser.get(url.rstrip("/") + f"/alerts?entity={calm}")
        wait(browser, lambda d: "no alerts match" in d.find_element(By.ID, "alerts").text)

        browser.get(url.rstrip("/") + "/status")
        wait(browser, lambda d: "no worker metrics at" in d.find_element(By.ID, "main").text)
        assert "windows watermark" in browser.find_element(By.ID, "status-cards").text
        browser.save_screenshot(str(out / "console-status.png"))
    finally:
        stop()
