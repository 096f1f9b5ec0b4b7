"""Fixtures of the web console tests. The server is the Platform API's own test server
(``faasops api serve`` as a subprocess, from tests/api/api_support.py and observe_support.py),
with the console at ``/``; helpers for a browser-like session are in console_support.py."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "api"))

from api_support import ADMIN_TOKEN, ApiServer, make_git_project, start_server  # noqa: E402
from console_support import ConsoleClient  # noqa: E402
from faasops.api.access import create_token  # noqa: E402
from testkit.availability import unavailable  # noqa: E402
from observe_support import shared_server  # noqa: E402

#: name -> scopes of the tokens the shared console server accepts (besides ADMIN_TOKEN).
SCOPED = {"demo-writer": ["write:demo"], "shop-reader": ["read:shop"], "demo-reader": ["read:demo"]}


@pytest.fixture(scope="module")
def console_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ApiServer, dict[str, str]]]:
    """`faasops api serve` on examples/hello plus a workspace `shop` (created through the
    API), the admin token and the SCOPED tokens (by name; "admin" is ADMIN_TOKEN)."""
    running = shared_server(tmp_path_factory.mktemp("console"))
    server, tokens_file = next(running)
    try:
        tokens = {name: create_token(tokens_file, name, scopes) for name, scopes in SCOPED.items()}
        created = server.client().post("/api/workspaces", params={"wait": "true"}, json={"name": "shop"})
        assert created.status_code == 201, created.text
        yield server, {"admin": ADMIN_TOKEN, **tokens}
    finally:
        running.close()  # stops the server


@pytest.fixture
def browser_session(console_server: tuple[ApiServer, dict[str, str]],
                    ) -> Iterator[Callable[[str | None], ConsoleClient]]:
    """A factory of browser-like sessions on the shared console, signed in with the named token
    (None: not signed in); every client is closed in teardown."""
    server, tokens = console_server
    made: list[ConsoleClient] = []

    def session(token_name: str | None) -> ConsoleClient:
        client = ConsoleClient(server.url)
        made.append(client)
        if token_name is not None:
            answer = client.sign_in(tokens[token_name])
            assert answer.status_code == 303, answer.text
        return client

    yield session
    for client in made:
        client.close()


CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")


@pytest.fixture
def console_project(tmp_path: Path) -> Path:
    """A project of the test's own (examples/hello in git), for tests that write."""
    return make_git_project(tmp_path)


@pytest.fixture
def start_console(console_project: Path, tmp_path: Path) -> Iterator[Callable[[], ApiServer]]:
    """Start `faasops api serve` (the console at `/`) on the test's own project, admin token
    only (start it after changing the project: it serves what git holds); stopped in teardown."""
    started: list[ApiServer] = []

    def start() -> ApiServer:
        server = start_server(console_project, (), {"FAASOPS_API_TOKEN": ADMIN_TOKEN},
                              tmp_path / f"api-server-{len(started)}.log")
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def own_console(start_console: Callable[[], ApiServer]) -> ApiServer:
    return start_console()


@pytest.fixture
def chrome() -> Iterator[Any]:
    """Debian's chromium, headless, at 1280×800, driven through Debian's chromedriver (never a
    downloaded one); quit in teardown, which ends chromedriver and every browser process."""
    if not CHROMIUM.exists() or not CHROMEDRIVER.exists():
        unavailable(f"the browser test needs {CHROMIUM} and {CHROMEDRIVER} (apt-get install chromium chromium-driver)")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        unavailable("the browser test needs selenium (pip install -e '.[test]')")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,800",
                     "--disable-gpu", "--no-first-run", "--disable-extensions", "--disable-background-networking"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()
