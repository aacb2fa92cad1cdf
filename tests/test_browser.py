"""The notebook as a reader sees it: real JupyterLab, headless Chromium, which code cells show folded.

Plumbing code cells carry the tag `toolbox` and `metadata.jupyter.source_hidden: true`, which JupyterLab and
Notebook 7 show folded: a one-line `.jp-InputPlaceholder` (first line and "•••") instead of the editor. Every
`toolbox` code cell must show the placeholder and no editor, every other code cell a visible CodeMirror editor
(`.jp-InputArea-editor`) and no placeholder, and each its own first line (DOM cells map to the JSON's by index).
A synthetic 3-cell notebook proves the detection.

Needs jupyterlab and selenium (requirements.txt) and Debian's chromium and chromium-driver (.ci/run); skipped
without them. NOTEBOOK_SCREENSHOT=path.png keeps a screenshot of the notebook's top (else it goes to a tmp dir).
"""
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from importlib.util import find_spec
from pathlib import Path

import pytest

from conftest import NOTEBOOK

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
MISSING = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()] + [
    m for m in ("jupyterlab", "selenium") if find_spec(m) is None]
if MISSING:
    pytest.skip(f"needs {', '.join(MISSING)} (apt-get install chromium chromium-driver; "
                "pip install jupyterlab selenium)", allow_module_level=True)

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402

CHROME_FLAGS = ("--headless=new --no-sandbox --disable-gpu --disable-dev-shm-usage --disable-quic --no-first-run "
                "--disable-background-networking --disable-component-update --disable-sync").split()
# User settings: render every cell (JupyterLab 4 otherwise windows long notebooks), no news toast over the page
LAB_SETTINGS = {"notebook-extension/tracker": {"windowingMode": "none"},
                "apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False}}
LAB_FLAGS = ["--no-browser", "--allow-root", "--ip=127.0.0.1", "--IdentityProvider.token=", "--ServerApp.password=",
             "--LabApp.extension_manager=readonly", "--LabApp.news_url=None",
             "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
CELLS_JS = """return [...document.querySelectorAll('.jp-Notebook .jp-Cell')].map(cell => {
  const get = sel => cell.querySelector(sel), shown = sel => !!get(sel) && get(sel).offsetHeight > 0;
  return {folded: shown('.jp-InputPlaceholder'), open: shown('.jp-InputArea-editor'),
          line: (get('.jp-InputPlaceholder .jp-PlaceholderText') || get('.jp-InputArea-editor .cm-line') || {}).innerText};
});"""
SCHEDULE_CELL = re.compile(r"^def \w*beta_schedule\(", re.M)      # the first DDPM code: the noise schedule


def is_toolbox(cell):
    return "toolbox" in cell["metadata"].get("tags", [])


def first_line(text):
    return " ".join((text or "").split("\n")[0].split())


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server on a free port, serving a tmp dir: yields (url, root)."""
    root = tmp_path_factory.mktemp("lab")
    for name, values in LAB_SETTINGS.items():
        path = root / "settings" / "@jupyterlab" / f"{name}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(root / "config"), JUPYTER_RUNTIME_DIR=str(root / "runtime"))
    log = open(root / "server.log", "w")
    server = subprocess.Popen([sys.executable, "-m", "jupyter", "lab", f"--port={port}", f"--ServerApp.root_dir={root}",
                               f"--LabApp.user_settings_dir={root / 'settings'}",
                               f"--LabApp.workspaces_dir={root / 'workspaces'}", *LAB_FLAGS],
                              env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(240):
            assert server.poll() is None, (root / "server.log").read_text()
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api", timeout=1)
                break
            except OSError:
                time.sleep(0.25)
        yield f"http://127.0.0.1:{port}", root
    finally:
        server.terminate()
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in CHROME_FLAGS + [f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)   # paths given: no Selenium Manager
    try:
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                               {"width": 1280, "height": 1600, "deviceScaleFactor": 1, "mobile": False})
        yield driver
    finally:
        driver.quit()


def shown_cells(lab, browser, cells, name, timeout=45):
    """Open notebook `name` from the server's root; once every cell is rendered, each cell's state in the DOM."""
    url, root = lab
    browser.get(f"{url}/lab/tree/{name}?reset")         # ?reset: a fresh workspace, no tab left from before
    deadline, states = time.monotonic() + timeout, []
    while time.monotonic() < deadline:
        states = browser.execute_script(CELLS_JS)
        code = [s for s, c in zip(states, cells) if c["cell_type"] == "code"]
        if len(states) == len(cells) and all(s["folded"] != s["open"] for s in code):
            break
        time.sleep(0.25)
    assert len(states) == len(cells), f"{len(states)} of {len(cells)} cells in the DOM after {timeout} s"
    return states


def check_folding(cells, states):
    bad = []
    for i, (cell, state) in enumerate(zip(cells, states)):
        want, line, shown = is_toolbox(cell), first_line("".join(cell["source"])), first_line(state["line"])
        if cell["cell_type"] == "code" and ((state["folded"], state["open"]) != (want, not want) or shown != line):
            bad.append(f"  [{i}] {'toolbox: should be folded' if want else 'should be open'}, shows folded="
                       f"{state['folded']} open={state['open']}: {line[:70]!r}"
                       + ("" if shown == line else f" but shows {shown[:70]!r}"))
    if bad:
        pytest.fail("code cells not shown as their tags say:\n" + "\n".join(bad), pytrace=False)


def test_synthetic_notebook_shows_toolbox_folded(lab, browser):
    code = {"cell_type": "code", "execution_count": None, "outputs": []}
    cells = [{"cell_type": "markdown", "id": "title", "metadata": {}, "source": ["# Synthetic"]},
             {**code, "id": "science", "metadata": {}, "source": ["betas = linear_beta_schedule(1000)\n", "x = 1"]},
             {**code, "id": "plumbing", "metadata": {"tags": ["toolbox"], "jupyter": {"source_hidden": True}},
              "source": ["import os  # plumbing\n", "y = 2"]}]
    nb = {"cells": cells, "nbformat": 4, "nbformat_minor": 5,
          "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}}}
    (lab[1] / "synthetic.ipynb").write_text(json.dumps(nb))
    states = shown_cells(lab, browser, cells, "synthetic.ipynb")
    assert [(s["folded"], s["open"]) for s in states[1:]] == [(False, True), (True, False)], states
    check_folding(cells, states)
    with pytest.raises(pytest.fail.Exception, match=r"\[1\] toolbox: should be folded"):   # the check can fail
        check_folding([cells[0], {**cells[1], "metadata": cells[2]["metadata"]}, cells[2]], states)


def test_notebook_shows_toolbox_folded_and_ddpm_code_open(lab, browser):
    text = NOTEBOOK.read_text()
    (lab[1] / NOTEBOOK.name).write_text(text)
    cells = json.loads(text)["cells"]
    states = shown_cells(lab, browser, cells, NOTEBOOK.name)
    for tab in browser.find_elements(By.CSS_SELECTOR, ".jp-SideBar.jp-mod-left .lm-TabBar-tab.lm-mod-current"):
        tab.click()                                     # fold the file browser away: more notebook on the picture
    browser.execute_script("document.querySelector('.jp-Notebook').scrollTop = 0")
    browser.save_screenshot(os.environ.get("NOTEBOOK_SCREENSHOT") or str(lab[1] / "notebook.png"))
    assert any(is_toolbox(c) for c in cells if c["cell_type"] == "code"), "no code cell is tagged `toolbox`"
    check_folding(cells, states)
    schedule = next((i for i, c in enumerate(cells)
                     if c["cell_type"] == "code" and SCHEDULE_CELL.search("".join(c["source"]))), None)
    assert schedule is not None, "no code cell defines the beta schedule (def ..._beta_schedule)"
    assert states[schedule]["open"] and not states[schedule]["folded"], f"cell {schedule} (the schedule) is folded"
