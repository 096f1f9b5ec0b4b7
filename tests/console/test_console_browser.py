"""The web console in a real browser: Debian's chromium, headless, driven by selenium through
chromedriver. Signs in, creates a function from the browser, watches it deploy, invokes it,
sees its log line and a point on its chart, and leaves screenshots in test-artifacts/console/."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from api_support import ADMIN_TOKEN, ApiServer, git
from console_support import ARTIFACTS

# Printed by the handler, so its log line is ours; fixed text keeps the build cached.
GREETING = "console-e2e greeting"
CODE = f'''from spin_sdk import http
from spin_sdk.http import Request, Response


class IncomingHandler(http.IncomingHandler):
    def handle_request(self, request: Request) -> Response:
        print("{GREETING}")
        return Response(200, {{"content-type": "text/plain"}}, b"Hello from the browser!")
'''
DEPLOY_TIMEOUT_S = 900.0
PHONE = (390, 844)
UNLABELLED = """return [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
    .filter(el => el.labels.length === 0).map(el => el.outerHTML);"""


def wait_for(driver: Any, condition: Any, timeout_s: float = 60.0) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout_s, poll_frequency=0.25).until(condition)


def shoot(driver: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    assert driver.save_screenshot(str(path)), path
    print(f"console screenshot: {path}")
    return path


def set_viewport(driver: Any, width: int, height: int, mobile: bool = False) -> None:
    """Make the page's viewport exactly ``width``×``height`` CSS pixels (screenshots too)."""
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile})


def tab_to(driver: Any, element_id: str, limit: int = 80) -> list[str]:
    """Press Tab from the top of the page until ``element_id`` has the focus; the tags passed."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    driver.execute_script("document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0);")
    passed = []
    for _ in range(limit):
        ActionChains(driver).send_keys(Keys.TAB).perform()
        focused = driver.switch_to.active_element
        passed.append(focused.tag_name)
        if focused.get_attribute("id") == element_id:
            return passed
    raise AssertionError(f"Tab never reached #{element_id}; it went through {passed}")


def assert_usable(driver: Any) -> None:
    """Every form control on the page has a label; nothing scrolls sideways."""
    assert driver.execute_script(UNLABELLED) == []
    assert driver.execute_script("return document.documentElement.scrollWidth <= window.innerWidth + 1")


@pytest.mark.slow
def test_a_function_created_in_the_browser_deploys_answers_logs_and_charts(own_console: ApiServer, chrome: Any,
                                                                           capsys: pytest.CaptureFixture[str]) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as seen

    driver = chrome
    driver.get(f"{own_console.url}/workspaces/demo")
    # Signed out: the sign-in form, then back where we wanted to go.
    token = wait_for(driver, seen.element_to_be_clickable((By.ID, "token")))
    assert_usable(driver)
    token.send_keys(ADMIN_TOKEN, Keys.ENTER)  # the keyboard alone signs in
    wait_for(driver, seen.text_to_be_present_in_element((By.ID, "signed-in-as"), "admin"))
    assert driver.current_url == f"{own_console.url}/workspaces/demo"
    cookie = driver.get_cookie("faasops_console")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["value"] != ADMIN_TOKEN

    driver.find_element(By.ID, "new-function").click()
    name = wait_for(driver, seen.element_to_be_clickable((By.ID, "function-name")))
    assert_usable(driver)
    name.send_keys("greet")
    editor = driver.find_element(By.ID, "code")
    editor.clear()
    editor.send_keys(CODE)
    driver.find_element(By.ID, "save-code").click()

    # The function page watches the write's task, then reloads once it is applied.
    wait_for(driver, seen.presence_of_element_located((By.ID, "watched-task")))
    assert "/workspaces/demo/functions/greet?task=" in driver.current_url
    set_viewport(driver, 1280, 800)
    shoot(driver, "deploying-1280x800.png")
    wait_for(driver, seen.presence_of_element_located((By.ID, "artifact")), DEPLOY_TIMEOUT_S)
    assert driver.find_element(By.ID, "function-status").text == "synced"
    assert driver.find_element(By.ID, "artifact-digest").text.startswith("sha256:")
    assert "Create function demo/greet" in git(own_console.project, "log", "-1", "--format=%s")

    path = driver.find_element(By.ID, "invoke-path")
    path.clear()
    path.send_keys("/hello?from=browser")
    driver.find_element(By.ID, "invoke-submit").click()
    wait_for(driver, seen.presence_of_element_located((By.ID, "invoke-status")))
    assert driver.find_element(By.ID, "invoke-status").text == "200"
    assert driver.find_element(By.ID, "invoke-body-out").text == "Hello from the browser!"
    assert float(driver.find_element(By.ID, "invoke-elapsed").text) > 0

    wait_for(driver, seen.text_to_be_present_in_element((By.ID, "logs"), f"stdout| {GREETING}"))
    assert "/hello?from=browser 200" in driver.find_element(By.ID, "logs").text
    point = wait_for(driver, seen.presence_of_element_located(
        (By.CSS_SELECTOR, '#chart figure[data-series="requests"] circle.point')))
    assert float(point.get_attribute("data-value")) >= 1
    assert_usable(driver)

    page = driver.current_url.split("/invoke")[0]  # the function page itself (GET)
    set_viewport(driver, 1280, 800)
    driver.get(page)
    wait_for(driver, seen.presence_of_element_located((By.CSS_SELECTOR, "#chart circle.point")))
    assert_usable(driver)
    shoot(driver, "function-1280x800.png")
    # Keyboard only: Tab reaches the invoke button through real links and controls, focus visible.
    passed = tab_to(driver, "invoke-submit")
    assert set(passed) <= {"a", "button", "input", "select", "textarea", "pre", "summary"}, passed
    assert driver.execute_script("return getComputedStyle(document.activeElement).outlineStyle") == "solid"

    # Code the API refuses: shown at its line, the link to it puts the cursor there.
    head = git(own_console.project, "rev-parse", "HEAD")
    driver.find_element(By.ID, "edit-code").click()
    editor = wait_for(driver, seen.element_to_be_clickable((By.ID, "code")))
    assert GREETING in editor.get_attribute("value")
    editor.clear()
    editor.send_keys(CODE.replace(f'print("{GREETING}")', f'print("{GREETING}"'))
    driver.find_element(By.ID, "save-code").click()
    marked = wait_for(driver, seen.presence_of_element_located((By.CSS_SELECTOR, "li.has-error")))
    assert marked.get_attribute("id") == "L7" and "never closed" in marked.text
    shoot(driver, "code-error-1280x800.png")
    driver.find_element(By.CSS_SELECTOR, "[data-goto-line]").click()
    assert driver.switch_to.active_element.get_attribute("id") == "code"
    assert git(own_console.project, "rev-parse", "HEAD") == head

    set_viewport(driver, *PHONE, mobile=True)
    driver.get(page)
    wait_for(driver, seen.presence_of_element_located((By.CSS_SELECTOR, "#chart circle.point")))
    assert_usable(driver)
    shoot(driver, "function-phone.png")
    with capsys.disabled():  # shown without -s too: where the screenshots are
        print(f"\nconsole screenshots: {ARTIFACTS}")
