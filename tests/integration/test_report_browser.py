"""The report as a browser shows it: headless Chromium (Debian's, with its chromedriver) loads
the HTML from disk, every image decodes, the console has no error, and a screenshot is kept."""

from __future__ import annotations

import base64
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from streamlearn.foundation.store import Store
from streamlearn.report.build import build_report
from tests.conftest import under_ci
from tests.integration.report_data import seed

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
HINT = (
    "headless Chromium missing: run .ci/install-chromium (apt-get install chromium chromium-driver)"
)
ARTIFACTS_ENV = "STREAMLEARN_TEST_ARTIFACTS"


def need_chromium() -> None:
    """Fail under CI=true (the check must run there), else skip with the install hint."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("selenium (pip install -e '.[dev]')")
    if not missing:
        return
    message = f"{HINT}; not found: {', '.join(missing)}"
    if under_ci():
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def browser(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    need_chromium()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    # Never let Selenium Manager look for (or download) a driver: the system one is given.
    monkeypatch.setenv("SE_OFFLINE", "true")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(arg)
    options.add_argument("--window-size=1280,1000")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def keep_artifact(data: bytes, name: str, tmp_path: Path) -> Path:
    """Write into tmp_path, and into $STREAMLEARN_TEST_ARTIFACTS when it is set."""
    path = tmp_path / name
    path.write_bytes(data)
    if target := os.environ.get(ARTIFACTS_ENV):
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, Path(target) / name)
    return path


def test_the_report_renders_in_chromium(browser, tmp_path: Path):
    store = Store(f"chdb://{tmp_path}/ch")
    try:
        store.migrate()
        seed(store)
        page = build_report(store.query_df, tmp_path / "report", None, "chdb://<test store>")
    finally:
        store.close()
    browser.get(page.as_uri())
    assert browser.title == "streamlearn report"
    images = browser.execute_script(
        "return Array.from(document.images).map(i => "
        "[i.dataset.slug, i.complete, i.naturalWidth, i.naturalHeight]);"
    )
    assert len(images) == 8, images
    for slug, complete, width, height in images:
        assert complete and width > 0 and height > 0, (slug, complete, width, height)
    severe = [e for e in browser.get_log("browser") if e.get("level") == "SEVERE"]
    assert severe == [], severe
    shot = browser.execute_cdp_cmd(
        "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}
    )
    path = keep_artifact(base64.b64decode(shot["data"]), "report-browser.png", tmp_path)
    assert path.stat().st_size > 10_000


def test_without_chromium_ci_fails_and_a_developer_is_told_how(monkeypatch, tmp_path: Path):
    monkeypatch.setattr(sys.modules[__name__], "CHROMIUM", tmp_path / "chromium")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="install-chromium"):
        need_chromium()
    monkeypatch.setenv("CI", "")
    with pytest.raises(pytest.skip.Exception, match="install-chromium"):
        need_chromium()
