"""Fixtures for the browser tests: the real server on a free port, Debian's Chromium, fresh pages.

The server runs `python main.py` in a subprocess over a temporary base directory whose only node pack
is the fast fake of the built-in nodes (tests/web/fake_nodes.py), so a whole text-to-image run takes
well under a second. Chromium is /usr/bin/chromium (CHROMIUM_PATH overrides); a missing browser is
an error, never a skip. Screenshots go to artifacts/web/.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "artifacts" / "web"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
EXTENSION_JS = """
import {app} from "../../scripts/app.js";
app.registerExtension({
  name: "test.marker",
  beforeRegisterNodeDef(nodeType, nodeData) {
    if (nodeData.name === "KSampler") nodeType.prototype.markedByExtension = true;
  },
  setup() { window.__extensionSetup = true; },
});
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_base_directory(root: Path) -> Path:
    """A base directory with the fake node pack (plus a web extension) as its only custom nodes."""
    pack = root / "custom_nodes" / "fake_builtin"
    pack.mkdir(parents=True)
    shutil.copy(Path(__file__).with_name("fake_nodes.py"), pack / "fake_nodes.py")
    (pack / "__init__.py").write_text(
        "from .fake_nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS\nWEB_DIRECTORY = './js'\n")
    (pack / "js").mkdir()
    (pack / "js" / "marker.js").write_text(EXTENSION_JS)
    for sub in ("models/checkpoints", "input", "output", "temp", "user"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    return root


def wait_until_up(url: str, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode} before answering")
        try:
            with urllib.request.urlopen(url + "/api/object_info", timeout=2) as res:
                if res.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"the server did not answer at {url} within {timeout} s")


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """The real server (main.py) serving web/ with the fake nodes; yields (base_url, base_dir).

    DIFFGRAPH_WEB_TEST_URL points the tests at a server that is already running instead."""
    if os.environ.get("DIFFGRAPH_WEB_TEST_URL"):
        yield os.environ["DIFFGRAPH_WEB_TEST_URL"].rstrip("/"), None
        return
    base = make_base_directory(tmp_path_factory.mktemp("diffgraph-web"))
    port = free_port()
    log = open(base / "server.log", "w")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "main.py"), "--listen", "127.0.0.1", "--port", str(port),
         "--base-directory", str(base), "--no-builtin-nodes"],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url, proc)
        yield url, base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="module")
def browser():
    """Chromium under Playwright's sync API, one per test module: that API keeps an event loop marked as
    running in this thread while it is started, so it is stopped after each module and the async tests
    that follow (in any order, `pytest --random-order`) can start their own loops."""
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: run web/setup.sh --test (Debian's chromium package)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


class Page:
    """A fresh browser page on the editor, with its console errors collected."""

    def __init__(self, browser, url: str, base: Path):
        self.url, self.base = url, base
        self.context = browser.new_context(viewport={"width": 1500, "height": 860}, accept_downloads=True)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))

    def _console(self, msg) -> None:
        if msg.type == "error":
            self.errors.append(f"{msg.text} ({msg.location.get('url', '')})")

    def open(self) -> Page:
        self.page.goto(self.url + "/")
        self.page.wait_for_function("document.body.dataset.ready === 'true'", timeout=15000)
        return self

    def js(self, expr: str, arg=None):
        return self.page.evaluate(expr, arg)

    def shot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path))
        return path

    def api(self, route: str):
        with urllib.request.urlopen(self.url + route, timeout=10) as res:
            return json.loads(res.read())

    def fetch_bytes(self, route: str) -> bytes:
        with urllib.request.urlopen(self.url + route, timeout=10) as res:
            return res.read()


def settle_queue(url: str, timeout: float = 30.0) -> None:
    """Clear what earlier tests left queued or running on the shared server, so each test starts idle."""
    def post(route: str, body: dict) -> None:
        req = urllib.request.Request(url + route, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        urllib.request.urlopen(req, timeout=10).close()
    post("/api/queue", {"clear": True})
    post("/api/interrupt", {})
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with urllib.request.urlopen(url + "/api/queue", timeout=10) as res:
            queue = json.loads(res.read())
        if not queue["queue_running"] and not queue["queue_pending"]:
            return
        time.sleep(0.05)
    raise AssertionError("the test server did not become idle")


@pytest.fixture
def editor(browser, server):
    url, base = server
    settle_queue(url)
    p = Page(browser, url, base).open()
    yield p
    p.context.close()
