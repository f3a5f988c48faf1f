"""The review and annotation widgets in a real browser: JupyterLab on 127.0.0.1, Debian's chromium driven by selenium.

Notebooks 03 and 06 are opened (smoke mode, ``interactive = True``) and run in JupyterLab; the test waits for the
widget, clicks a decision (03: reject) and a rating (06: 4), and checks the line each click appends to its JSONL file.
Needs ``chromium`` + ``chromium-driver`` (Debian) and the ``dev`` extra (selenium, jupyterlab): without them the test
is skipped locally, and fails where ``LABKIT_REQUIRE_BROWSER=1`` (CI, see ``.ci/run``).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.browser
RUN_TIMEOUT_S = 1500  # the whole notebook runs (smoke mode) before its widget appears


def _missing() -> list[str]:
    missing = []
    if not (shutil.which("chromium") or shutil.which("chromium-browser")):
        missing.append("chromium (apt-get install chromium)")
    if not shutil.which("chromedriver"):
        missing.append("chromedriver (apt-get install chromium-driver)")
    for module in ("selenium", "jupyterlab"):
        try:
            __import__(module)
        except ImportError:
            missing.append(f"{module} (pip install -e '.[dev]')")
    return missing


@pytest.fixture(scope="module")
def requirements() -> None:
    missing = _missing()
    if missing and os.environ.get("LABKIT_REQUIRE_BROWSER") == "1":
        pytest.fail("LABKIT_REQUIRE_BROWSER=1 but the browser test cannot run; missing: " + "; ".join(missing))
    if missing:
        pytest.skip("browser test needs " + "; ".join(missing))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _interactive_copy(name: str, folder: Path) -> None:
    nb = nbformat.read(str(REPO / "notebooks" / name), as_version=4)
    params = next(c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", []))
    assert "interactive = False" in params.source, name
    params.source = params.source.replace("interactive = False", "interactive = True")
    nbformat.write(nb, str(folder / name))


@pytest.fixture(scope="module")
def lab(requirements: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    root = tmp_path_factory.mktemp("lab")
    runs = root / "runs"
    for name in ("03_data_construction.ipynb", "06_evaluation.ipynb"):
        _interactive_copy(name, root)
    # every cell laid out in full: JupyterLab's default windowing sizes off-screen cells by estimate and moves the
    # widget under the pointer when they render, so a click could land on another cell's output
    settings = root / "lab-settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)
    (settings / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    port, token = _free_port(), secrets.token_hex(16)
    env = {**os.environ, "PYTHONPATH": str(REPO), "LABKIT_RUNS": str(runs), "JUPYTER_NO_CONFIG": "1",
           "JUPYTERLAB_SETTINGS_DIR": str(root / "lab-settings")}
    log = (root / "jupyter.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
                             f"--ServerApp.token={token}", f"--ServerApp.root_dir={root}", "--allow-root",
                             "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
                            cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=5)
                break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError("JupyterLab did not start:\n" + (root / "jupyter.log").read_text())
                time.sleep(1)
        yield {"base": base, "token": token, "runs": runs, "root": root}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


@pytest.fixture(scope="module")
def browser(lab: dict[str, object]) -> Iterator[object]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium") or shutil.which("chromium-browser") or ""
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1500,1100"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=opts)
    try:
        yield driver
    finally:
        driver.quit()


def _open_and_run_all(driver: object, lab: dict[str, object], name: str) -> None:
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(f"{lab['base']}/lab/tree/{name}?token={lab['token']}")
    wait = WebDriverWait(driver, 180)
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, ".jp-NotebookPanel .jp-Cell")))  # cells queue
    try:  # JupyterLab may ask which kernel to start: take the proposed one (the notebook's python3)
        WebDriverWait(driver, 30).until(ec.element_to_be_clickable(
            (By.XPATH, "//div[contains(@class,'jp-Dialog')]//button[normalize-space()='Select']"))).click()
    except TimeoutException:
        pass
    menu = wait.until(ec.element_to_be_clickable(
        (By.XPATH, "//li[contains(@class,'lm-MenuBar-item')][.//div[normalize-space()='Run']]")))
    menu.click()
    wait.until(ec.element_to_be_clickable(
        (By.XPATH, "//li[contains(@class,'lm-Menu-item')][.//div[normalize-space()='Run All Cells']]"))).click()


def _button(driver: object, text: str, timeout: float = RUN_TIMEOUT_S) -> object:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    xpath = f"//button[contains(@class,'jupyter-button')][normalize-space()='{text}']"
    clickable = ec.element_to_be_clickable((By.XPATH, xpath))

    def ready(d: object) -> object:
        errors = d.find_elements(By.CSS_SELECTOR, "[data-mime-type='application/vnd.jupyter.error']")
        if errors:  # a cell failed: Run All stopped, the widget will never come
            raise AssertionError("a notebook cell failed in JupyterLab:\n" + errors[0].text[-2000:])
        return clickable(d)

    return WebDriverWait(driver, timeout, poll_frequency=2).until(ready)


def _click(driver: object, text: str, timeout: float = 90) -> None:
    """Click the widget button ``text`` as a user would, once it is on screen and nothing covers it.

    JupyterLab re-lays the notebook out while outputs render (its windowed notebook moves cells under the pointer),
    so the button is found again, scrolled to the middle of the window and clicked; a click that lands on another
    element (``ElementClickInterceptedException``) or on a re-rendered button (stale) is tried again.
    """
    from selenium.common.exceptions import ElementClickInterceptedException, StaleElementReferenceException

    deadline = time.time() + timeout
    while True:
        button = _button(driver, text, timeout=max(1.0, deadline - time.time()))
        driver.execute_script("arguments[0].scrollIntoView({block: 'center', inline: 'center'});", button)
        time.sleep(0.5)  # let the scroll settle before the pointer goes there
        try:
            button.click()
            return
        except (ElementClickInterceptedException, StaleElementReferenceException):
            if time.time() > deadline:
                raise
            time.sleep(1)


def _wait_idle(driver: object, timeout: float = RUN_TIMEOUT_S) -> None:
    """Until every cell has run: a widget's clicks reach the kernel only between cell executions."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def idle(d: object) -> bool:
        text = d.find_element(By.CSS_SELECTOR, ".jp-StatusBar-Widget, #jp-main-statusbar").text
        return "Idle" in text and "Busy" not in text

    WebDriverWait(driver, timeout, poll_frequency=2).until(idle)


def _wait_text(driver: object, text: str, timeout: float = 60) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout).until(lambda d: text in d.find_element(By.TAG_NAME, "body").text)


def _last_line(path: Path, timeout: float = 60) -> dict[str, object]:
    deadline = time.time() + timeout
    while not path.exists() or not path.read_text(encoding="utf-8").strip():
        if time.time() > deadline:
            raise AssertionError(f"nothing was written to {path}")
        time.sleep(1)
    return json.loads(path.read_text(encoding="utf-8").strip().splitlines()[-1])


def test_reviewer_in_notebook_03_saves_a_click(lab: dict[str, object], browser: object) -> None:
    decisions = Path(lab["runs"]) / "data" / "smoke" / "decisions.jsonl"
    _open_and_run_all(browser, lab, "03_data_construction.ipynb")
    _button(browser, "拒绝 reject")
    _wait_idle(browser)
    _wait_text(browser, "待审")
    _click(browser, "拒绝 reject")
    _wait_text(browser, "✔ 已保存")
    rec = _last_line(decisions)
    assert rec["decision"] == "reject" and rec["reviewer"] == "me" and "::" in str(rec["job_id"])
    assert f"✔ 已保存 {rec['job_id']}" in browser.find_element("tag name", "body").text.replace("\n", " ")


def test_annotator_in_notebook_06_saves_a_rating(lab: dict[str, object], browser: object) -> None:
    labels = Path(lab["runs"]) / "eval" / "smoke" / "labels_A.jsonl"
    _open_and_run_all(browser, lab, "06_evaluation.ipynb")
    _button(browser, "4")
    _wait_idle(browser)
    _click(browser, "4")
    _wait_text(browser, "✔ 已保存")
    rec = _last_line(labels)
    assert rec["score"] == 4 and rec["annotator"] == "A" and str(rec["item_id"]).startswith("sandbox:")
