#!/usr/bin/python3
"""The status page in a real browser: headless Chromium (Debian's chromium and
chromium-driver, driven by python3-selenium) opens polar-loadd's page, sees the
scenario rows update, presses Pause on one scenario (entering the control token
in the page's dialog) and sees its achieved rate fall to zero while the other
scenario keeps running. Everything is on loopback; the whole run is bounded by
an alarm.

    status_page_test.py POLAR_LOADD POLAR_SIM [--screenshot FILE] [--flaky-target]

--screenshot saves the page after the pause (docs/status-page.png is made this
way). --flaky-target replaces polar-sim with a small in-process target that
fails 5 % of requests (HTTP 503 with a JSON body), so the picture shows the
recent-errors table too.
"""
import argparse
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
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

CONTROL_TOKEN = "status-page-test-token-0123456789abcdef"
TIME_LIMIT_S = 150
RATE_SCALE = float(os.environ.get("POLAR_TEST_RATE_SCALE", "1") or 1)


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
        m = re.search(r"metrics on (http://127\.0\.0\.1:[0-9]+)/metrics", log.read())
        if m:
            return loadd, m.group(1), log
        if loadd.poll() is not None:
            break
        time.sleep(0.05)
    log.seek(0)
    fail("polar-loadd did not start:\n" + log.read())


def browser(work):
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    # This machine has no internet: nothing may try to reach it.
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run", "--disable-default-apps",
                "--window-size=1360,820", f"--user-data-dir={work}/chromium-profile"):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def cell(driver, scenario, field):
    return driver.find_element(
        By.CSS_SELECTOR, f'tr.scenario[data-scenario="{scenario}"] td[data-field="{field}"]').text


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
        loadd, page, log = start_loadd(args.loadd, work, base_url, api_token)
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
            driver.execute_script("document.body.style.zoom = '1'")
            driver.save_screenshot(args.screenshot)
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
