"""The web console over real HTTP (`faasops api serve`, driven like a browser with httpx):
sign-in and its cookie, CSRF refusals, scope hiding, pages, and code errors at their line."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from api_support import ApiServer, git
from console_support import ConsoleClient

Sessions = Callable[[str | None], ConsoleClient]
BROKEN_CODE = "from spin_sdk import http\n\ndef broken(:\n    pass\n"


# ---------------------------------------------------------------------------------- sign in


def test_sign_in_sets_an_opaque_httponly_strict_cookie_never_the_token(console_server: tuple[ApiServer, dict[str, str]],
                                                                       browser_session: Sessions) -> None:
    server, tokens = console_server
    browser = browser_session(None)
    answer = browser.sign_in(tokens["demo-writer"])

    assert answer.status_code == 303 and answer.headers["location"] == "/workspaces"
    [cookie] = answer.headers.get_list("set-cookie")
    attributes = [part.strip().lower() for part in cookie.split(";")]
    name, _, value = cookie.split(";")[0].partition("=")
    assert name == "faasops_console" and len(value) >= 40
    assert "httponly" in attributes and "samesite=strict" in attributes and "path=/" in attributes
    assert "secure" not in attributes  # plain http here: a Secure cookie would never come back
    assert tokens["demo-writer"] not in str(answer.headers) and tokens["demo-writer"] not in answer.text
    page = browser.get("/workspaces")
    assert page.status_code == 200
    assert 'id="signed-in-as">demo-writer<' in page.text
    assert tokens["demo-writer"] not in page.text


def test_the_cookie_is_secure_when_the_console_is_served_over_https(console_server: tuple[ApiServer, dict[str, str]],
                                                                    browser_session: Sessions) -> None:
    server, tokens = console_server
    https_origin = server.url.replace("http://", "https://")
    # As a TLS-terminating proxy on this host forwards it (uvicorn trusts 127.0.0.1's X-Forwarded-Proto).
    answer = browser_session(None).http.post("/login", data={"token": tokens["admin"]},
                                             headers={"Origin": https_origin, "X-Forwarded-Proto": "https"})
    assert answer.status_code == 303, answer.text
    assert "secure" in [part.strip().lower() for part in answer.headers["set-cookie"].split(";")]


def test_a_wrong_token_is_refused_with_401_and_no_session(browser_session: Sessions) -> None:
    browser = browser_session(None)
    answer = browser.sign_in("fo_not-a-token-at-all-0123456789")
    assert answer.status_code == 401
    assert "That token is not valid." in answer.text
    assert "set-cookie" not in answer.headers
    assert browser.get("/workspaces").status_code == 303


def test_pages_send_a_signed_out_browser_to_sign_in_and_back(browser_session: Sessions) -> None:
    answer = browser_session(None).get("/workspaces/demo/functions/hello")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login?next=%2Fworkspaces%2Fdemo%2Ffunctions%2Fhello"
    form = browser_session(None).get("/login", params={"next": "//evil.example/x"})
    assert 'name="next" value="/workspaces"' in form.text  # only paths on this server


def test_sign_in_from_another_origin_is_refused(console_server: tuple[ApiServer, dict[str, str]],
                                                browser_session: Sessions) -> None:
    _, tokens = console_server
    browser = browser_session(None)
    answer = browser.http.post("/login", data={"token": tokens["admin"]}, headers={"Origin": "https://evil.example"})
    assert answer.status_code == 403
    assert "set-cookie" not in answer.headers


def test_sign_out_ends_the_session_on_the_server(console_server: tuple[ApiServer, dict[str, str]],
                                                 browser_session: Sessions) -> None:
    server, _ = console_server
    browser = browser_session("demo-reader")
    cookie = browser.http.cookies["faasops_console"]
    answer = browser.post("/logout", {})
    assert answer.status_code == 303 and answer.headers["location"] == "/login"
    replay = ConsoleClient(server.url)
    try:
        replay.http.cookies.set("faasops_console", cookie)
        assert replay.get("/workspaces").status_code == 303  # the old cookie is worth nothing now
    finally:
        replay.close()


# ---------------------------------------------------------------------------------- CSRF


@pytest.mark.parametrize("csrf, origin", [(False, "same"), (True, "https://evil.example"), (True, None),
                                          (False, None)])
def test_a_write_without_the_csrf_token_or_from_another_origin_answers_403(
        console_server: tuple[ApiServer, dict[str, str]], browser_session: Sessions, csrf: bool,
        origin: str | None) -> None:
    server, _ = console_server
    head = git(server.project, "rev-parse", "HEAD")
    browser = browser_session("admin")
    created = browser.post("/workspaces/demo/new-function", {"name": "forged", "code": "x = 1\n"},
                           csrf=csrf, origin=origin)
    invoked = browser.post("/workspaces/demo/functions/hello/invoke", {"method": "GET", "path": "/"},
                           csrf=csrf, origin=origin)
    assert created.status_code == 403 and invoked.status_code == 403
    assert "cross-site request refused" in created.text
    assert git(server.project, "rev-parse", "HEAD") == head


def test_a_write_with_the_token_and_a_same_origin_referer_passes_the_checks(browser_session: Sessions) -> None:
    browser = browser_session("admin")
    token = browser.csrf_token()
    answer = browser.http.post("/workspaces/demo/functions/hello/invoke",
                               data={"csrf_token": token, "method": "GET", "path": "/"},
                               headers={"Referer": f"{browser.url}/workspaces/demo/functions/hello"})
    assert answer.status_code == 200, answer.text
    assert "not deployed" in answer.text  # the API's answer (409), shown on the page


def test_the_csrf_header_works_for_scripted_writes(browser_session: Sessions) -> None:
    browser = browser_session("admin")
    answer = browser.http.post("/workspaces/demo/functions/hello/invoke", data={"method": "GET"},
                               headers={"X-CSRF-Token": browser.csrf_token(), "Origin": browser.url})
    assert answer.status_code == 200, answer.text


# ---------------------------------------------------------------------------------- scopes


def test_a_token_without_scope_on_a_workspace_never_sees_it(browser_session: Sessions) -> None:
    shop, admin = browser_session("shop-reader"), browser_session("admin")

    listed = shop.get("/workspaces")
    assert re.findall(r'<a href="/workspaces/([^"/]+)">', listed.text) == ["shop"]
    assert re.findall(r'<a href="/workspaces/([^"/]+)">', admin.get("/workspaces").text) == ["demo", "shop"]
    missing_ws, missing_fn = shop.get("/workspaces/nope"), shop.get("/workspaces/shop/functions/nope")
    for path in ("/workspaces/demo", "/workspaces/demo/tasks", "/workspaces/demo/functions/hello",
                 "/workspaces/demo/functions/hello/code", "/workspaces/demo/new-function"):
        hidden = shop.get(path)
        assert (hidden.status_code, hidden.text) == (404, missing_ws.text), path
    assert missing_fn.status_code == 404 and missing_fn.text == missing_ws.text
    for part in ("tasks", "logs", "chart"):
        assert shop.get(f"/workspaces/demo/functions/hello/live/{part}").status_code == 404
    assert shop.post("/workspaces/demo/functions/hello/invoke", {"method": "GET"}).status_code == 404
    shop_plan, admin_plan = shop.get("/plan"), admin.get("/plan")
    assert "demo/hello" in admin_plan.text and "demo" not in shop_plan.text.split('id="plan-markdown"')[1]


def test_a_reader_sees_the_function_but_no_write_or_invoke_forms(browser_session: Sessions) -> None:
    page = browser_session("demo-reader").get("/workspaces/demo/functions/hello")
    assert page.status_code == 200
    assert 'id="invoke-submit"' not in page.text and "may not invoke" in page.text
    code = browser_session("demo-reader").get("/workspaces/demo/functions/hello/code")
    assert "Hello from Blue FaaS!" in code.text and 'id="save-code"' not in code.text


# ---------------------------------------------------------------------------------- pages


def test_pages_show_declared_and_deployed_state(browser_session: Sessions) -> None:
    browser = browser_session("admin")
    workspaces = browser.get("/workspaces").text
    workspace = browser.get("/workspaces/demo").text
    function = browser.get("/workspaces/demo/functions/hello")

    assert "status-pending-create" in workspaces  # demo is declared, never applied
    assert re.search(r'href="/workspaces/demo/functions/hello">hello</a>.*?status-pending-create', workspace, re.S)
    assert function.status_code == 200
    assert "source: functions/hello" in function.text and "not deployed" in function.text
    for control in ("invoke-method", "invoke-path", "invoke-headers", "invoke-body", "chart-window", "follow-logs"):
        labelled = rf'<label for="{control}"|<label><input type="checkbox" id="{control}"'
        assert re.search(labelled, function.text), control
    assert browser.get("/workspaces/demo/tasks").status_code == 200
    live = browser.get("/workspaces/demo", params={"refresh": "true"})  # + a plan of the target
    assert live.status_code == 200
    assert re.search(r'href="/workspaces/demo/functions/hello">hello</a>.*?<td>create</td>', live.text, re.S)


def test_the_plan_preview_is_plan_format_markdown(console_server: tuple[ApiServer, dict[str, str]],
                                                  browser_session: Sessions) -> None:
    page = browser_session("admin").get("/plan")
    assert page.status_code == 200
    assert "### faasops plan: `hello`" in page.text and "| action | kind | address |" in page.text


def test_pages_load_only_assets_shipped_in_the_package(browser_session: Sessions) -> None:
    browser = browser_session("admin")
    page = browser.get("/workspaces/demo/functions/hello")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assets = re.findall(r'(?:src|href)="([^"#]+)"', page.text)
    assert assets and all(a.startswith("/") and not a.startswith("//") for a in assets), assets
    for asset in ("/static/console.css", "/static/console.js"):
        assert browser.get(asset).status_code == 200


def test_code_the_api_refuses_is_shown_at_its_line(console_server: tuple[ApiServer, dict[str, str]],
                                                   browser_session: Sessions) -> None:
    server, _ = console_server
    head = git(server.project, "rev-parse", "HEAD")
    answer = browser_session("demo-writer").post("/workspaces/demo/new-function",
                                                 {"name": "broken", "code": BROKEN_CODE.replace("\n", "\r\n")})

    assert answer.status_code == 422
    marked = re.search(r'<li id="L(\d+)" value="\d+" class="has-error" data-line="\d+"><code>([^<]*)</code>\s*'
                       r'<p class="line-error">line (\d+), column \d+: ([^<]+)</p>', answer.text)
    assert marked, answer.text
    assert marked.group(1) == marked.group(3) == "3" and marked.group(2) == "def broken(:"
    assert "syntax" in marked.group(4).lower()
    assert re.search(r'<a href="#L3" data-goto-line="3">app.py:3:\d+</a>', answer.text)
    assert 'value="broken"' in answer.text and "def broken(:\n    pass" in answer.text  # the form keeps the input
    assert git(server.project, "rev-parse", "HEAD") == head
