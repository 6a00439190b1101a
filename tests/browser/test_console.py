"""The duty officers' console in Chromium: sign in, the live board and map, answering a task,
requesting supplies, switching language, and forms usable by keyboard and screen readers."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
from playwright.sync_api import Page, expect

from tests.browser.conftest import PASSWORD, WUJIANG, Console, screenshot
from tests.factories import cap

LIVE_S = 2_000  # the bound: what is reported shows within 2 s, without a reload
WAIT_MS = 10_000


def report(console: Console, message: dict[str, Any]) -> None:
    answer = httpx.post(
        f"{console.hub.url}/api/v1/incidents",
        json=message,
        headers={"Authorization": f"Bearer {console.token}"},
        timeout=10.0,
    )
    assert answer.status_code == 202, answer.text


def sign_in(page: Page, console: Console, username: str) -> None:
    page.goto(console.hub.url + "/")
    # By keyboard only: the fields are reached and named by their labels.
    page.get_by_label("用户名").fill(username)
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page.get_by_role("navigation")).to_be_visible(timeout=WAIT_MS)
    expect(page.locator("#live")).to_have_attribute("data-state", "up", timeout=WAIT_MS)


def unlabelled_fields(page: Page) -> list[str]:
    """Form fields with no accessible name (no <label for>, no aria-label)."""
    found: list[str] = page.eval_on_selector_all(
        "input, select, textarea, button",
        """els => els.filter(e => !e.closest('[hidden]')).filter(e => {
             const named = (e.labels && e.labels.length && e.labels[0].textContent.trim())
               || e.getAttribute('aria-label') || (e.tagName === 'BUTTON' && e.textContent.trim());
             return !named; }).map(e => e.outerHTML.slice(0, 80))""",
    )
    return found


def test_sign_in_refuses_a_wrong_password_then_admits(page: Page, console: Console) -> None:
    page.goto(console.hub.url + "/")
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    assert unlabelled_fields(page) == []
    page.get_by_label("用户名").fill("officer.wujiang")
    page.get_by_label("密码").fill("not-the-password")
    page.get_by_role("button", name="登录").click()
    expect(page.get_by_role("alert").filter(has_text="用户名或密码错误")).to_be_visible()
    screenshot(page, "01-sign-in")
    sign_in(page, console, "officer.wujiang")
    expect(page.locator("#who")).to_contain_text("吴江区")


def test_an_incident_appears_on_the_board_and_the_map_without_reload(
    page: Page, console: Console
) -> None:
    sign_in(page, console, "officer.wujiang")
    expect(page.get_by_role("heading", name="事件看板")).to_be_visible()
    marker = page.evaluate("() => { window.__unreloaded = true; return true; }")
    identifier = f"board-{uuid.uuid4().hex[:8]}"
    report(console, cap(identifier))
    row = page.locator(f'tr[data-thread="310118,{identifier}"]')
    expect(row).to_be_visible(timeout=LIVE_S)
    expect(row).to_contain_text("青浦区")
    expect(row).to_contain_text("严重")
    assert marker and page.evaluate("() => window.__unreloaded === true")
    # An update and a cancellation of the same thread change the row in place.
    sent = "2026-07-01T08:30:00+08:00"
    report(
        console,
        cap(f"{identifier}-c", msg_type="Cancel", references=f"310118,{identifier},{sent}"),
    )
    expect(row.locator("[data-status]")).to_have_attribute("data-status", "Cancel", timeout=LIVE_S)
    expect(row).to_have_class(re.compile("cancelled"))
    # Filters: a severity that does not match hides it; "all" shows it again.
    page.get_by_label("严重程度").select_option("Minor")
    expect(row).to_be_hidden()
    page.get_by_label("严重程度").select_option("")
    expect(row).to_be_visible()
    assert unlabelled_fields(page) == []
    screenshot(page, "02-board")

    live = f"map-{uuid.uuid4().hex[:8]}"
    page.get_by_role("link", name="地图").click()
    expect(page.locator("svg.map path.district")).to_have_count(71)
    report(console, cap(live))
    expect(page.locator(f'svg.map circle.area[data-thread="310118,{live}"]')).to_have_count(
        1, timeout=LIVE_S
    )
    polygon = cap(f"{live}-p", circle=None)
    polygon["info"][0]["area"][0]["polygon"] = [
        "31.00,120.85 31.06,120.85 31.06,120.95 31.00,120.95 31.00,120.85"
    ]
    report(console, polygon)
    expect(page.locator(f'svg.map path.area[data-thread="310118,{live}-p"]')).to_have_count(
        1, timeout=LIVE_S
    )
    expect(page.locator("svg.map line.task").first).to_be_attached(timeout=WAIT_MS)
    expect(page.locator("svg.map rect.depot").first).to_be_attached()
    screenshot(page, "03-map")


def test_an_officer_acknowledges_accepts_and_declines_tasks(page: Page, console: Console) -> None:
    first, second = (f"task-{uuid.uuid4().hex[:8]}" for _ in range(2))
    report(console, cap(first))
    report(console, cap(second, circle="31.03,120.90 3"))
    sign_in(page, console, "officer.wujiang")
    page.get_by_role("link", name="我的任务").click()

    def row_of(identifier: str) -> Any:
        return page.locator(f'#task-rows tr:has(a[href*="{identifier}"])')

    # Each spill asks Wujiang once; the countdown to the deadline runs.
    expect(row_of(first)).to_have_count(1, timeout=WAIT_MS)
    expect(row_of(second)).to_have_count(1, timeout=WAIT_MS)
    assert unlabelled_fields(page) == []
    row = row_of(first)
    expect(row.locator("[data-state]")).to_have_attribute("data-state", "issued")
    expect(row.locator(".countdown")).to_contain_text(re.compile(r"剩余|已超时"))
    row.get_by_role("button", name=re.compile("^确认收到")).click()
    expect(row.locator("[data-state]")).to_have_attribute("data-state", "acknowledged")
    row.get_by_role("button", name=re.compile("^接受")).click()
    expect(row.locator("[data-state]")).to_have_attribute("data-state", "accepted")
    screenshot(page, "04-my-tasks")

    # A decline needs a reason, typed into a labelled field reached by keyboard.
    other = row_of(second)
    other.get_by_role("button", name=re.compile("^确认收到")).click()
    expect(other.locator("[data-state]")).to_have_attribute("data-state", "acknowledged")
    other.get_by_role("button", name=re.compile("^拒绝")).press("Enter")
    reason = other.get_by_label("拒绝理由")
    expect(reason).to_be_focused()
    page.keyboard.type("本区力量已全部投入太湖防汛")
    other.get_by_role("button", name="提交拒绝").click()
    expect(other.locator("[data-state]")).to_have_attribute("data-state", "declined")

    # The incident's page shows the task and why it exists.
    other.get_by_role("link").first.click()
    expect(page.locator("#incident-tasks")).to_contain_text("cross-border-water-pollution")
    expect(page.locator("#incident-tasks")).to_contain_text("yrd-demo-zone-emergency-linkage")
    expect(page.locator("#versions li")).to_have_count(1)
    expect(page.locator("#explain")).to_contain_text("已匹配")
    screenshot(page, "05-incident")


def test_request_supplies_shows_the_plan_then_the_commitment(page: Page, console: Console) -> None:
    identifier = f"supply-{uuid.uuid4().hex[:8]}"
    report(console, cap(identifier))
    sign_in(page, console, "officer.qingpu")
    page.get_by_role("link", name="物资").click()
    expect(page.locator("#stock-rows tr").first).to_be_visible(timeout=WAIT_MS)
    assert unlabelled_fields(page) == []
    page.get_by_label("针对事件").select_option(f"310118,{identifier}")
    expect(page.get_by_label("纬度")).to_have_value("31.0300")
    page.get_by_label("物资", exact=True).select_option("sandbag")
    page.get_by_label("数量").fill("300")
    page.get_by_role("button", name="生成调配方案").click()
    plan = page.locator("#plan-lines tbody tr")
    expect(plan.first).to_be_visible(timeout=WAIT_MS)
    expect(page.locator("#plan")).to_contain_text("300 / 300")
    expect(page.locator("#my-holds tr")).to_have_count(0)  # nothing held before confirming
    screenshot(page, "06-resources-plan")
    page.get_by_role("button", name="确认申请").click()
    expect(page.locator("#my-holds tr").first).to_be_visible(timeout=WAIT_MS)
    states = page.locator("#my-holds tr").evaluate_all("rs => rs.map(r => r.dataset.state)")
    assert states and set(states) <= {"held", "committed"}
    screenshot(page, "07-resources-committed")


def test_switching_language_translates_every_page(page: Page, console: Console) -> None:
    report(console, cap(f"lang-{uuid.uuid4().hex[:8]}"))
    sign_in(page, console, "coordinator")
    page.get_by_role("button", name="切换到英文").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("#live")).to_have_text("Live: connected")
    nav = page.get_by_role("navigation", name="Main navigation")
    for label in ("Incident board", "Map", "My tasks", "Resources", "Playbooks"):
        expect(nav.get_by_role("link", name=label)).to_be_visible()
    expect(page.get_by_role("heading", name="Incident board")).to_be_visible()
    expect(page.locator("#board-rows tr").first).to_contain_text("Qingpu")
    screenshot(page, "08-board-en")
    nav.get_by_role("link", name="Playbooks").click()
    expect(page.locator("[data-playbook]")).to_have_count(9)
    expect(page.locator("main")).not_to_contain_text("严重程度")
    screenshot(page, "09-playbooks-en")
    nav.get_by_role("link", name="My tasks").click()
    expect(page.get_by_role("heading", name="Tasks across the region (read only)")).to_be_visible()
    page.get_by_role("button", name="Switch to Chinese").click()
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    expect(page.get_by_role("heading", name="全区域任务（只读）")).to_be_visible()


def test_exercise_traffic_carries_the_banner(page: Page, console: Console) -> None:
    sign_in(page, console, "officer.wujiang")
    banner = page.locator("#exercise-banner")
    page.get_by_role("link", name="我的任务").click()
    identifier = f"drill-{uuid.uuid4().hex[:8]}"
    report(console, cap(identifier, status="Exercise"))
    page.get_by_role("link", name="事件看板").click()
    expect(page.locator(f'tr[data-thread="310118,{identifier}"]')).to_be_visible(timeout=LIVE_S)
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("演练")
    expect(banner).to_contain_text("EXERCISE")
    page.get_by_label("严重程度").select_option("Minor")  # no exercise row shown: no banner
    expect(banner).to_be_hidden()
    page.get_by_label("严重程度").select_option("")
    page.locator(f'tr[data-thread="310118,{identifier}"] a').click()
    expect(page.get_by_role("heading", level=2)).to_be_visible()
    expect(banner).to_be_visible()
    screenshot(page, "10-exercise-incident")
    assert WUJIANG in page.url or "incident" in page.url


def test_the_coordinator_approves_what_a_playbook_holds(page: Page, console: Console) -> None:
    """A cluster of cases in Qingpu: the infectious-disease playbook holds the cross-border passes
    for the regional coordinator, who approves them on the approvals page; an officer sees the
    request but has no button to decide it."""
    identifier = f"cluster-{uuid.uuid4().hex[:8]}"
    message = cap(identifier, category="Health", circle="31.05,120.95 3")
    message["info"][0]["event"] = "聚集性传染病疫情"
    report(console, message)
    thread = f"310118,{identifier}"

    sign_in(page, console, "officer.wujiang")
    page.get_by_role("link", name="审批").click()
    row = page.locator(f'#approval-rows tr:has(a[href*="{identifier}"])')
    expect(row).to_have_attribute("data-state", "requested", timeout=WAIT_MS)
    expect(row.get_by_role("button")).to_have_count(0)
    page.get_by_role("button", name="退出登录").click()

    sign_in(page, console, "coordinator")
    page.get_by_role("link", name="审批").click()
    expect(row).to_have_attribute("data-state", "requested", timeout=WAIT_MS)
    assert unlabelled_fields(page) == []
    screenshot(page, "11-approvals")
    row.get_by_role("button", name=re.compile("^批准")).click()
    expect(row).to_have_attribute("data-state", "approved", timeout=WAIT_MS)
    expect(row).to_contain_text("coordinator")

    # The held tasks were issued when approved: the passes for Wujiang are now on its list.
    tasks = httpx.get(
        f"{console.hub.url}/api/v1/tasks",
        params={"incident": thread},
        headers={"Authorization": f"Bearer {console.token}"},
        timeout=10.0,
    ).json()["tasks"]
    steps = {(t["why"]["step"], t["target"]) for t in tasks}
    assert ("mutual-passes", WUJIANG) in steps, steps
