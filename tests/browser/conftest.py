"""Browser tests of the console: a real hub process and Debian's Chromium driven by Playwright.

Chromium is the system's (``/usr/bin/chromium``, installed by ``scripts/setup --dev``), never a
browser downloaded by Playwright. Screenshots of the main pages go to
``tests/browser/screenshots/`` (git-ignored) for people to look at.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright import sync_api

from tests.integration.hubproc import _CLI, CLI_TIMEOUT_S, HubProcess, add_adapter, hub_env
from tests.integration.stream_client import add_user

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
REGISTRY = Path(__file__).resolve().parents[2] / "hub" / "registry" / "data"
PASSWORD = "browser-test-pw-1"
QINGPU, WUJIANG = "310118", "320509"


@dataclass
class Console:
    hub: HubProcess
    token: str  # Qingpu's adapter token: the city system that reports incidents


@pytest.fixture(scope="package")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    # A missing browser fails these tests by name rather than skipping them: scripts/setup
    # --dev installs it, so a skip would only hide a broken set-up.
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: scripts/setup --dev installs Debian's chromium")
    data = tmp_path_factory.mktemp("console") / "data"
    token = add_adapter(data, QINGPU, "qingpu")
    subprocess.run(
        [*_CLI, "registry", "import", str(REGISTRY / "demo-depots.csv"),
         str(REGISTRY / "demo-stock.csv"), "--data", str(data)],
        env=hub_env(), check=True, capture_output=True, timeout=CLI_TIMEOUT_S,
    )  # fmt: skip
    add_user(data, "officer.wujiang", "officer", WUJIANG, PASSWORD)
    add_user(data, "officer.qingpu", "officer", QINGPU, PASSWORD)
    add_user(data, "coordinator", "coordinator", None, PASSWORD)
    SCREENSHOTS.mkdir(exist_ok=True)
    with HubProcess(data) as hub:
        hub.start()
        yield Console(hub, token)


@pytest.fixture(scope="package")
def browser() -> Iterator[sync_api.Browser]:
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: sync_api.Browser) -> Iterator[sync_api.Page]:
    context = browser.new_context(viewport={"width": 1360, "height": 900}, locale="zh-CN")
    the_page = context.new_page()
    errors: list[str] = []
    the_page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield the_page
    context.close()
    assert errors == [], f"the page raised: {errors}"


def screenshot(page: sync_api.Page, name: str) -> Path:
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
