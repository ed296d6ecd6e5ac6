#!/usr/bin/python3
"""The status page in a real browser: headless Chromium (Debian's chromium and
chromium-driver, driven by python3-selenium) opens polar-loadd's page, sees the
scenario rows update and the charts drawn by Chart.js (the instances' data has
points, and a new point arrives while the daemon runs), presses Pause on one
scenario (entering the control token in the page's dialog) and sees its
achieved rate fall to zero in the table and in its chart while the other
scenario keeps running. A second browser with JavaScript off gets the tables
from the server. Everything is on loopback; the whole run is bounded by an
alarm.

    status_page_test.py POLAR_LOADD POLAR_SIM [--screenshot FILE] [--flaky-target]

--screenshot saves the page after the pause (docs/status-page.png is made this
way). --flaky-target replaces polar-sim with a small in-process target that
fails 5 % of requests (HTTP 503 with a JSON body), so the picture shows the
recent-errors table too.
"""
import argparse
import base64
import hashlib
import hmac
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.support.ui import WebDriverWait

CONTROL_TOKEN = "status-page-test-token-0123456789abcdef"
WEBHOOK_SECRET = "whsec_StatusPageTestWebhookSecret0123456789abcd"
TIME_LIMIT_S = 170
RATE_SCALE = float(os.environ.get("POLAR_TEST_RATE_SCALE", "1") or 1)



def shrink_png(path):
    """The docs' screenshots in 256 colours (pngquant, scripts/deps test): a third of the size."""
    if shutil.which("pngquant"):
        subprocess.run(["pngquant", "--quality=70-95", "--speed=1", "--strip", "--force",
                        "--output", path, path], check=True)

def fail(message):
    print(f"FAIL: {message}", file=sys.stderr)
    sys.exit(1)


class FlakyTarget(BaseHTTPRequestHandler):
    """Answers POST /v1/events/ingest like Polar, 5 % of the time with a 503."""

    protocol_version = "HTTP/1.1"

    def do_POST(self):  # noqa: N802 (http.server's naming)
        length = int(self.headers.get("Content-Length", "0"))
        body = json.loads(self.rfile.read(length) or b"{}")
        n = len(body.get("events", []))
        if random.random() < 0.05:
            status, answer = 503, {"error": "ServiceUnavailable",
                                   "detail": "worker pool exhausted, retry later"}
        else:
            time.sleep(random.uniform(0.002, 0.03))
            status, answer = 200, {"inserted": n, "duplicates": 0}
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def start_sim(sim_bin):
    sim = subprocess.Popen([sim_bin, "--listen", "127.0.0.1:0"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = sim.stdout.readline()
    if not line:
        fail("polar-sim did not print its ready line")
    ready = json.loads(line)
    return sim, ready["base_url"], ready["token"]


def start_loadd(loadd_bin, work, base_url, api_token):
    with open(os.path.join(work, "control-token"), "w") as f:
        f.write(CONTROL_TOKEN + "\n")
    config = os.path.join(work, "polar-loadd.toml")
    with open(config, "w") as f:
        f.write(f"""[target]
base_url = "{base_url}"

[metrics]
listen = "127.0.0.1:0"

[control]
token_file = "{work}/control-token"

[webhooks]
listen = "127.0.0.1:0"
secret = "{WEBHOOK_SECRET}"

[scenarios.ingest]
type = "event_ingestion"
rate = "{20 * RATE_SCALE}/s"
batch_size = 7

[scenarios.ingest_burst]
type = "event_ingestion"
rate = "{5 * RATE_SCALE}/s"
arrivals = "poisson"
batch_size = 1
""")
    log = open(os.path.join(work, "loadd.log"), "w+")
    env = dict(os.environ, LOAD_TEST_API_TOKEN=api_token)
    loadd = subprocess.Popen([loadd_bin, "--config", config], stdout=subprocess.DEVNULL,
                             stderr=log, env=env)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        log.seek(0)
        text = log.read()
        m = re.search(r"metrics on (http://127\.0\.0\.1:[0-9]+)/metrics", text)
        w = re.search(r"webhook receiver on (http://127\.0\.0\.1:[0-9]+/\S+)", text)
        if m and w:
            return loadd, m.group(1), w.group(1), log
        if loadd.poll() is not None:
            break
        time.sleep(0.05)
    log.seek(0)
    fail("polar-loadd did not start:\n" + log.read())


def deliver(receiver, event_type, data, webhook_id, good_signature=True):
    """One webhook as Polar signs it (Standard Webhooks; the key is the
    secret's UTF-8 bytes)."""
    body = json.dumps({"type": event_type, "timestamp": "2026-01-01T00:00:00Z",
                       "data": data}).encode()
    timestamp = str(int(time.time()))
    key = WEBHOOK_SECRET.encode() if good_signature else b"not-the-secret-0123456789abcdef"
    mac = hmac.new(key, f"{webhook_id}.{timestamp}.".encode() + body, hashlib.sha256)
    request = urllib.request.Request(receiver, data=body, method="POST", headers={
        "Content-Type": "application/json", "webhook-id": webhook_id,
        "webhook-timestamp": timestamp,
        "webhook-signature": "v1," + base64.b64encode(mac.digest()).decode()})
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status
    except urllib.error.HTTPError as e:
        return e.code


def browser(work, javascript=True):
    options = webdriver.ChromeOptions()
    if not javascript:
        options.add_experimental_option(
            "prefs", {"profile.managed_default_content_settings.javascript": 2})
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    options.binary_location = "/usr/bin/chromium"
    # This machine has no internet: nothing may try to reach it.
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run", "--disable-default-apps",
                "--window-size=1360,820",
                f"--user-data-dir={work}/chromium-profile{'' if javascript else '-nojs'}"):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def cell(driver, scenario, field):
    return driver.find_element(
        By.CSS_SELECTOR, f'tr.scenario[data-scenario="{scenario}"] td[data-field="{field}"]').text


# A Chart.js chart's datasets as the page drew them: label, how many points
# hold a number, and the last point.
CHART_JS = """
const c = Chart.getChart(arguments[0]);
if (!c) return null;
return c.data.datasets.map((d) => {
  const nums = d.data.filter((p) => typeof p.y === 'number');
  return { label: d.label, numbers: nums.length,
           last: nums.length ? nums[nums.length - 1] : null };
});
"""


def dataset(driver, chart_id, label):
    sets = driver.execute_script(CHART_JS, chart_id)
    if not sets:
        return None
    return next((d for d in sets if d["label"] == label), None)


def number(text):
    try:
        return float(text.replace(",", ""))
    except ValueError:
        return None


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("loadd")
    parser.add_argument("sim")
    parser.add_argument("--screenshot")
    parser.add_argument("--flaky-target", action="store_true")
    args = parser.parse_args()

    signal.signal(signal.SIGALRM, lambda *_: fail(f"time limit of {TIME_LIMIT_S} s reached"))
    signal.alarm(TIME_LIMIT_S)
    work = tempfile.mkdtemp(prefix="polar-status-page-")
    procs, driver, server = [], None, None
    try:
        if args.flaky_target:
            server = ThreadingHTTPServer(("127.0.0.1", 0), FlakyTarget)
            threading.Thread(target=server.serve_forever, daemon=True).start()
            base_url, api_token = f"http://127.0.0.1:{server.server_port}", "polar_oat_screenshot"
        else:
            sim, base_url, api_token = start_sim(args.sim)
            procs.append(sim)
        loadd, page, receiver, log = start_loadd(args.loadd, work, base_url, api_token)
        procs.append(loadd)

        driver = browser(work)
        driver.get(page + "/")
        wait = WebDriverWait(driver, 20, poll_frequency=0.2)

        # The rows appear and update: the achieved rate becomes a number > 0 and
        # the live line's timestamp moves on.
        wait.until(lambda d: (number(cell(d, "ingest", "achieved")) or 0) > 0)
        first = driver.find_element(By.ID, "live").text
        wait.until(lambda d: d.find_element(By.ID, "live").text != first)
        print(f"live: {driver.find_element(By.ID, 'live').text}; "
              f"ingest achieved {cell(driver, 'ingest', 'achieved')}/s")

        # The charts: per scenario rate, load, latency and outcomes, drawn from
        # GET /api/history with data points, and a new point while we watch.
        for scenario in ("ingest", "ingest_burst"):
            for kind in ("rate", "load", "latency", "outcomes"):
                WebDriverWait(driver, 20, poll_frequency=0.5).until(
                    lambda d: driver.execute_script(CHART_JS, f"chart-{scenario}-{kind}"),
                    f"no chart {kind} of {scenario}")
        WebDriverWait(driver, 30, poll_frequency=0.5).until(
            lambda d: (dataset(d, "chart-ingest-rate", "achieved (started)") or {})
            .get("numbers", 0) >= 2)
        achieved = dataset(driver, "chart-ingest-rate", "achieved (started)")
        if not 10 * RATE_SCALE <= achieved["last"]["y"] <= 30 * RATE_SCALE:
            fail(f"the ingest chart's achieved rate is {achieved['last']}")
        p99 = dataset(driver, "chart-ingest-latency", "p99")
        if not p99 or p99["numbers"] < 1 or not 0 < p99["last"]["y"] < 5000:
            fail(f"the ingest latency chart's p99: {p99}")
        WebDriverWait(driver, 15, poll_frequency=0.5).until(
            lambda d: dataset(d, "chart-ingest-rate", "achieved (started)")["last"]["x"]
            > achieved["last"]["x"], "the rate chart got no new point")
        tabs = driver.find_element(By.CSS_SELECTOR, '.chart-group[data-scenario="ingest"] .step-tabs')
        if tabs.is_displayed():
            fail("step tabs shown for a scenario with one step")

        # Webhooks: a matrix of event type x verdict with a row only for the
        # types that got something: order.paid (3 unmatched: nothing of ours
        # announced them) and other (2 ignored, and the forged one: its body is
        # never parsed, since the signature is checked first, so its type is
        # not known).
        if "No webhook deliveries yet" not in driver.find_element(By.ID, "webhooks").text:
            fail("the webhook section does not say nothing came yet")
        for i in range(3):
            deliver(receiver, "order.paid", {"id": f"o{i}", "checkout_id": f"c{i}"}, f"msg_paid{i}")
        deliver(receiver, "order.paid", {"id": "o9", "checkout_id": "c9"}, "msg_forged", False)
        for i in range(2):
            deliver(receiver, "benefit_grant.created", {"id": f"b{i}"}, f"msg_other{i}")
        # Read in one script: the page re-renders the table every 1.5 s, so
        # element handles would go stale between two reads.
        matrix_js = """
const t = document.getElementById('webhook-matrix');
if (!t) return null;
const heads = [...t.tHead.rows[0].cells].map((c) => c.textContent);
const rows = {};
for (const tr of t.tBodies[0].rows) {
  rows[tr.dataset.type] = Object.fromEntries([...tr.cells].map((c, i) => [heads[i], c.textContent]));
}
return { heads, rows, order: [...t.tBodies[0].rows].map((tr) => tr.dataset.type) };
"""

        def cells():
            m = driver.execute_script(matrix_js)
            if not m or "order.paid" not in m["rows"] or "other" not in m["rows"]:
                return m
            paid, other = m["rows"]["order.paid"], m["rows"]["other"]
            return (m["order"], paid["unmatched"], paid["bad_signature"], paid["ok"],
                    other["ignored"], other["bad_signature"])

        # Unmatched only after webhooks.unmatched_after (10 s): the call that
        # caused it might still be answering.
        want = (["order.paid", "other"], "3", "0", "0", "2", "1")
        try:
            WebDriverWait(driver, 40, poll_frequency=0.5).until(lambda d: cells() == want)
        except TimeoutException:
            with urllib.request.urlopen(page + "/api/status", timeout=5) as answer:
                status = json.load(answer)
            fail(f"webhook matrix {cells()}, want {want}; /api/status: {status['webhooks']}")
        got = cells()
        verdicts = driver.execute_script(matrix_js)["heads"][1:10]
        rows = got[0]
        got = got[1:]
        print(f"webhooks: rows {rows}, columns {verdicts}, order.paid unmatched/bad_signature "
              f"{got[:2]}")
        print(f"charts: ingest achieved {achieved['numbers']} points, now "
              f"{dataset(driver, 'chart-ingest-rate', 'achieved (started)')['numbers']}")

        # Pause ingest through the page: the token dialog asks for the token.
        driver.find_element(
            By.CSS_SELECTOR, 'tr.scenario[data-scenario="ingest"] button[data-action="pause"]').click()
        wait.until(lambda d: d.find_element(By.ID, "token-dialog").get_attribute("open") is not None)
        driver.find_element(By.ID, "token-input").send_keys(CONTROL_TOKEN)
        driver.find_element(By.ID, "token-save").click()
        wait.until(lambda d: "pause ingest: ok" in d.find_element(By.ID, "message").text)
        wait.until(lambda d: "paused" in cell(d, "ingest", "state"))
        if driver.execute_script("return sessionStorage.getItem('polar-loadd-control-token')") \
                != CONTROL_TOKEN:
            fail("the token is not kept in sessionStorage")
        if driver.execute_script("return window.localStorage.length") != 0:
            fail("the page wrote to localStorage")

        # The achieved rate falls to zero (within the page's 5 s window) while
        # the other scenario keeps running.
        WebDriverWait(driver, 30, poll_frequency=0.25).until(
            lambda d: cell(d, "ingest", "achieved") == "0")
        other = number(cell(driver, "ingest_burst", "achieved"))
        if not other or other <= 0:
            fail(f"the other scenario stopped too: {other}")
        resume = driver.find_element(
            By.CSS_SELECTOR, 'tr.scenario[data-scenario="ingest"] button[data-action="resume"]')
        if not resume.is_displayed():
            fail("no Resume button on the paused scenario")
        print(f"paused: ingest achieved {cell(driver, 'ingest', 'achieved')}/s, "
              f"ingest_burst {other}/s")
        # Its chart shows it too: a point of zero arrivals.
        WebDriverWait(driver, 20, poll_frequency=0.5).until(
            lambda d: dataset(d, "chart-ingest-rate", "achieved (started)")["last"]["y"] == 0,
            "the ingest chart does not fall to zero")
        if dataset(driver, "chart-ingest_burst-rate", "achieved (started)")["last"]["y"] <= 0:
            fail("the other scenario's chart fell to zero too")
        problems = [e["message"] for e in driver.get_log("browser")
                    if e["level"] == "SEVERE" and "favicon.ico" not in e["message"]]
        if problems:
            fail(f"the browser reported errors (a CSP violation?): {problems}")

        # Without JavaScript the server's tables are the page, and say so.
        plain = browser(work, javascript=False)
        try:
            plain.get(page + "/")
            achieved_plain = number(cell(plain, "ingest", "achieved"))
            if achieved_plain is None or achieved_plain != 0:
                fail(f"without JavaScript the paused ingest's achieved rate reads "
                     f"{cell(plain, 'ingest', 'achieved')!r}")
            if not number(cell(plain, "ingest_burst", "achieved")):
                fail("without JavaScript the running scenario shows no rate")
            if plain.find_element(By.ID, "charts-section").is_displayed():
                fail("the charts section shows without JavaScript")
            if "JavaScript is off" not in plain.find_element(By.TAG_NAME, "main").text:
                fail("the page does not say that JavaScript is off")
            print(f"without JavaScript: ingest_burst achieved "
                  f"{cell(plain, 'ingest_burst', 'achieved')}/s")
        finally:
            plain.quit()

        # The daemon logged the action, without the token.
        log.seek(0)
        text = log.read()
        if "control: pause ingest from 127.0.0.1: paused" not in text:
            fail("the pause was not logged:\n" + text)
        if CONTROL_TOKEN in text:
            fail("the control token appears in the log")

        if args.screenshot:
            # Show an override too: the same API the page's buttons use.
            request = urllib.request.Request(
                page + "/api/scenarios/ingest_burst/rate", method="PUT",
                data=json.dumps({"rate": f"{8 * RATE_SCALE}/s", "for": "10m"}).encode(),
                headers={"Authorization": "Bearer " + CONTROL_TOKEN,
                         "Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=5) as answer:
                if answer.status != 200:
                    fail(f"rate override answered {answer.status}")
            wait.until(lambda d: "override" in cell(d, "ingest_burst", "state"))
            if args.flaky_target:
                # Let the errors table fill and the 1-minute figures settle.
                WebDriverWait(driver, 20).until(
                    lambda d: d.find_elements(By.CSS_SELECTOR, "#errors td.snippet"))
            # The whole page, charts included, once the charts show the pause.
            # The window grows until its viewport holds the page (the charts'
            # canvases resize with it, so the height moves a few times).
            for _ in range(5):
                inner, height, outer = driver.execute_script(
                    "return [window.innerHeight, document.documentElement.scrollHeight,"
                    " window.outerHeight]")
                if inner >= height:
                    break
                driver.set_window_size(1360, min(outer + height - inner + 8, 2400))
                time.sleep(0.5)
            driver.save_screenshot(args.screenshot)
            shrink_png(args.screenshot)
            print(f"screenshot: {args.screenshot}")
        print("status page test passed")
    finally:
        if driver:
            driver.quit()
        for p in reversed(procs):
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        if server:
            server.shutdown()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
