"""End to end: `halting view` serves the viewer on a free localhost port, headless Chromium opens
it (driven over the DevTools protocol), the maze renders, and a screenshot is saved and checked.

Needs Debian's `chromium` (apt-get install -y chromium); skipped with that reason elsewhere.
Screenshots go to the test's tmp folder, and also to $HALTING_SCREENSHOT_DIR when it is set.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from halting.data.grid import GOAL, OPEN, PATH, START, WALL
from halting.viewer import images

sys.path.insert(0, str(Path(__file__).parent))
from test_viewer import TINY_UT, maze_folder, train_tiny  # noqa: E402

pytestmark = pytest.mark.slow

BROWSERS = ("chromium", "chromium-browser")
CHROMIUM = next((shutil.which(b) for b in BROWSERS if shutil.which(b)), None)
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--remote-debugging-port=0",
)
WINDOW = (1500, 2000)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(condition, timeout: float, what: str, every: float = 0.25):
    """Poll `condition()` until it returns something truthy; fail naming `what`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


class Chromium:
    """Headless Chromium driven over the DevTools protocol (one page, commands in sequence)."""

    def __init__(self, executable: str, size: tuple[int, int]) -> None:
        from websockets.sync.client import connect

        self.profile = tempfile.mkdtemp(prefix="halting-chromium-")
        self.proc = subprocess.Popen(
            [
                executable,
                *CHROMIUM_FLAGS,
                f"--user-data-dir={self.profile}",
                f"--window-size={size[0]},{size[1]}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        active = Path(self.profile) / "DevToolsActivePort"  # "<port>\n<path>" once listening
        text = wait_for(
            lambda: active.is_file() and active.read_text().count("\n") >= 1 and active.read_text(),
            60,
            "Chromium's DevTools port",
        )
        port = int(text.split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as reply:
            pages = [t for t in json.load(reply) if t["type"] == "page"]
        self.connection = contextlib.ExitStack()
        self.ws = self.connection.enter_context(
            connect(pages[0]["webSocketDebuggerUrl"], max_size=None, open_timeout=30)
        )
        self.last_id = 0
        self.call(
            "Emulation.setDeviceMetricsOverride",
            width=size[0],
            height=size[1],
            deviceScaleFactor=1,
            mobile=False,
        )  # the viewport, exactly

    def call(self, method: str, **params) -> dict:
        self.last_id += 1
        self.ws.send(json.dumps({"id": self.last_id, "method": method, "params": params}))
        while True:  # events arrive in between; skip them
            message = json.loads(self.ws.recv(timeout=60))
            if message.get("id") == self.last_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]

    def js(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")

    def screenshot(self) -> bytes:
        return base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"])

    def close(self) -> None:
        try:
            self.connection.close()
        finally:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
            shutil.rmtree(self.profile, ignore_errors=True)


PAGE_STATE = """JSON.stringify({
  state: document.querySelector('.stApp')?.getAttribute('data-test-script-state') ?? null,
  text: document.body.innerText,
  images: Array.from(document.querySelectorAll('[data-testid="stImage"] img'))
              .map(i => i.complete && i.naturalWidth > 0),
  exceptions: document.querySelectorAll('[data-testid="stException"]').length,
  alerts: Array.from(document.querySelectorAll('[data-testid="stAlert"]')).map(a => a.innerText),
})"""


def rendered(browser: Chromium, must_contain: str):
    """The page state once the script run finished and every image has loaded, else None."""
    state = browser.js(PAGE_STATE)
    if state is None:  # the document is being replaced (navigation): not yet
        return None
    page = json.loads(state)
    done = (
        page["state"] == "notRunning"
        and must_contain in page["text"]
        and page["images"]
        and all(page["images"])
    )
    return page if done else None


@pytest.fixture(scope="module")
def maze_run(tmp_path_factory):
    """A tiny trained Universal Transformer on a tiny maze dataset (as in test_viewer.py)."""
    root = tmp_path_factory.mktemp("e2e")
    data = maze_folder(root / "maze-data")
    config = {
        "task": "maze",
        "model_type": "universal_transformer",
        "halting": "act",
        "ut_act": True,
        "data_dir": str(data),
        **TINY_UT,
    }
    return train_tiny(root / "results" / "maze_ut", config), data


@pytest.fixture
def server(maze_run, tmp_path):
    """`halting view` on a free port in its own process group, stopped afterwards."""
    ckpt, _ = maze_run
    port = free_port()
    script = Path(sys.executable).with_name("halting")
    cmd = [str(script)] if script.is_file() else [sys.executable, "-m", "halting.cli"]
    log = open(tmp_path / "view.log", "w")
    proc = subprocess.Popen(
        [
            *cmd,
            "view",
            "--port",
            str(port),
            "--no-browser",
            "--checkpoint",
            str(ckpt),
            "--results",
            str(ckpt.parent.parent),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )

    def healthy():
        assert proc.poll() is None, (tmp_path / "view.log").read_text()
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    try:
        wait_for(healthy, 90, "the Streamlit server to answer")
        yield f"http://127.0.0.1:{port}"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def colour_share(image: np.ndarray, rgb) -> float:
    """Share of pixels within a small distance of `rgb`."""
    return float((np.abs(image.astype(int) - np.asarray(rgb, dtype=int)).max(-1) <= 6).mean())


@pytest.mark.skipif(
    CHROMIUM is None,
    reason="headless Chromium not installed: "
    "`apt-get install -y chromium` (Debian) runs this end-to-end viewer test",
)
def test_halting_view_serves_the_maze_to_a_browser(server, tmp_path):
    from PIL import Image

    browser = Chromium(CHROMIUM, WINDOW)
    try:
        browser.call("Page.enable")
        browser.call("Page.navigate", url=server)
        page = wait_for(lambda: rendered(browser, "Pondering"), 120, "the maze to render")
        time.sleep(0.5)  # let the last images paint
        png = browser.screenshot()
    finally:
        browser.close()
    path = tmp_path / "viewer-maze.png"
    path.write_bytes(png)
    if os.environ.get("HALTING_SCREENSHOT_DIR"):
        out = Path(os.environ["HALTING_SCREENSHOT_DIR"])
        out.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, out / path.name)

    assert page["exceptions"] == 0 and page["alerts"] == [], page["alerts"]
    for word in ("Traceback", "Error", "Cannot load"):
        assert word not in page["text"]
    for word in ("Maze 0 of test", "Input", "Prediction", "Ponder step n", "Ponder steps per cell"):
        assert word in page["text"]
    assert len(page["images"]) >= 6  # input, label, prediction, step n, two heatmaps

    image = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    assert image.shape[:2] == (WINDOW[1], WINDOW[0])
    assert image.std() > 20 and len(np.unique(image.reshape(-1, 3), axis=0)) > 200  # not blank
    for token in (WALL, OPEN, START, GOAL, PATH):  # the maze palette is drawn
        assert colour_share(image, images.PALETTE[token]) > 1e-4, images.TOKEN_NAMES[token]
