#!/usr/bin/python3
"""The run report in a real browser: polar-loadd runs once against polar-sim
with --report, then headless Chromium (Debian's chromium and chromium-driver,
driven by python3-selenium) opens the file from file:// and the test checks
that the charts are drawn with data points, that nothing leaves the page (the
DevTools performance log lists every request the page made: only the file
itself), that the page broke no rule of its Content-Security-Policy, and that
none of the config's secrets (API token, control token, webhook secret) is in
the file. Everything is on loopback; the run is bounded by an alarm.

    report_test.py POLAR_LOADD POLAR_SIM [--screenshot FILE] [--duration 12s]
                   [--keep FILE] [--sim-arg ARG ...]

--screenshot saves the report; --keep copies the report file there;
--sim-arg passes a fault to polar-sim. docs/report.png is made with
  --duration 3m --sim-arg=--latency=events:ingest=lognormal:15ms,150ms
  --sim-arg=--latency=checkouts:create=lognormal:40ms,400ms
  --sim-arg=--error-ratio=checkouts:create=0.03:503
"""
import argparse
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.ui import WebDriverWait

TIME_LIMIT_S = 240
RATE_SCALE = float(os.environ.get("POLAR_TEST_RATE_SCALE", "1") or 1)
CONTROL_TOKEN = "report-test-control-token-0123456789abcdef"
WEBHOOK_SECRET = "whsec_ReportTestWebhookSecret0123456789abcdefghij"
MAX_REPORT_BYTES = 400 * 1024



def shrink_png(path):
    """The docs' screenshots in 256 colours (pngquant, scripts/deps test): a third of the size."""
    if shutil.which("pngquant"):
        subprocess.run(["pngquant", "--quality=70-95", "--speed=1", "--strip", "--force",
                        "--output", path, path], check=True)

def fail(message):
    print(f"FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def start_sim(sim_bin, extra):
    sim = subprocess.Popen([sim_bin, "--listen", "127.0.0.1:0"] + extra,
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = sim.stdout.readline()
    if not line:
        fail("polar-sim did not print its ready line")
    return sim, json.loads(line)


def write_config(work, ready):
    """Every secret written into the file itself, where the report's copy of
    the file would show it if redaction failed."""
    path = os.path.join(work, "polar-loadd.toml")
    with open(path, "w") as f:
        f.write(f"""# API token for {ready["base_url"]}: {ready["token"]}
[target]
base_url = "{ready["base_url"]}"
token = "{ready["token"]}"

[metrics]
listen = "127.0.0.1:0"

[control]
token = "{CONTROL_TOKEN}"

[webhooks]
listen = "127.0.0.1:0"
secret = "{WEBHOOK_SECRET}"

[scenarios.ingest]
type = "event_ingestion"
rate = "{20 * RATE_SCALE}/s"
batch_size = 5

[scenarios.ingest.thresholds.ingest]
p99 = "2s"
error_ratio = 0.01

[scenarios.checkout]
type = "checkout"
rate = "{2 * RATE_SCALE}/s"
product_id = "{ready["products"]["free"]["id"]}"
customer_email = "loadtest@polar.sh"
think_time = "200ms"
completion = "poll"
poll_interval = "200ms"
""")
    return path


# Per "scenario-step": requests answered ok or timed out over the whole run,
# read from the JSON the report carries for its charts.
ANSWERED_JS = """
const data = JSON.parse(document.getElementById('report-data').textContent);
const out = {};
for (const sc of data.scenarios) {
  for (const st of sc.steps || []) {
    let n = 0;
    for (const k of ['ok', 'timeout']) {
      for (const v of (st.outcomes || {})[k] || []) n += v || 0;
    }
    out[`${sc.name}-${st.step}`] = n;
  }
}
return out;
"""

def browser(work):
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run", "--disable-default-apps",
                "--allow-file-access-from-files", "--window-size=1360,900",
                f"--user-data-dir={work}/chromium-profile"):
        options.add_argument(arg)
    # The DevTools performance log: every network request the page makes.
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


CHART_DATA_JS = """
return Object.values(Chart.instances).map((c) => ({
  id: c.canvas.id,
  chart: c.canvas.dataset.chart,
  datasets: c.data.datasets.map((d) => ({
    label: d.label,
    points: d.data.length,
    numbers: d.data.filter((p) => typeof p.y === 'number' && isFinite(p.y)).length,
    max: Math.max(0, ...d.data.map((p) => (typeof p.y === 'number' ? p.y : 0))),
  })),
  drawn: c.canvas.width > 0 && c.canvas.height > 0,
}));
"""


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("loadd")
    parser.add_argument("sim")
    parser.add_argument("--screenshot")
    parser.add_argument("--duration", default="12s")
    parser.add_argument("--keep")
    parser.add_argument("--sim-arg", action="append", default=[])
    args = parser.parse_args()

    signal.signal(signal.SIGALRM, lambda *_: fail(f"time limit of {TIME_LIMIT_S} s reached"))
    signal.alarm(TIME_LIMIT_S)
    work = tempfile.mkdtemp(prefix="polar-report-")
    sim, driver = None, None
    try:
        sim, ready = start_sim(args.sim, args.sim_arg)
        config = write_config(work, ready)
        env = {k: v for k, v in os.environ.items() if not k.startswith("LOAD_TEST_")}
        run = subprocess.run(
            [args.loadd, "--config", config, "--once", "--duration", args.duration,
             "--report", os.path.join(work, "run-{start}.html")],
            capture_output=True, text=True, env=env, timeout=TIME_LIMIT_S - 30)
        if run.returncode != 0:
            fail(f"polar-loadd exited {run.returncode}:\n{run.stdout}\n{run.stderr}")
        reports = glob.glob(os.path.join(work, "run-*.html"))
        if len(reports) != 1 or not os.path.basename(reports[0])[4:-5].endswith("Z"):
            fail(f"expected one run-<start>.html, found {reports}")
        report = reports[0]
        if "run report: " + report not in run.stderr:
            fail("the log does not name the report:\n" + run.stderr)
        with open(report, encoding="utf-8") as f:
            html = f.read()
        size = len(html.encode())
        print(f"report: {os.path.basename(report)}, {size / 1024:.0f} KiB")
        if size > MAX_REPORT_BYTES:
            fail(f"the report is {size} bytes, more than {MAX_REPORT_BYTES}")
        for name, secret in (("API token", ready["token"]), ("control token", CONTROL_TOKEN),
                             ("webhook secret", WEBHOOK_SECRET)):
            if secret in html:
                fail(f"the {name} is in the report")
        if html.count("[redacted]") < 4:  # the comment, and the three keys
            fail("the report's config does not show the redacted values")
        if args.keep:
            shutil.copy(report, args.keep)

        driver = browser(work)
        driver.get("about:blank")
        driver.get_log("performance")  # what the browser's start loaded
        url = "file://" + report
        driver.get(url)
        WebDriverWait(driver, 20, poll_frequency=0.2).until(
            lambda d: d.execute_script("return document.documentElement.dataset.charts") == "drawn")
        charts = driver.execute_script(CHART_DATA_JS)
        ids = sorted(c["id"] for c in charts)
        # Per scenario: rate and load; per step: latency and outcomes. The
        # checkout's steps are those its funnel reached in the run.
        for want in ("chart-ingest-rate", "chart-ingest-load", "chart-ingest-ingest-latency",
                     "chart-ingest-ingest-outcomes", "chart-checkout-rate",
                     "chart-checkout-create-latency"):
            if want not in ids:
                fail(f"no chart {want}; charts: {ids}")
        # Requests of each step answered ok or timed out, from the report's own
        # data: only those have a latency (a fast failure is no fast answer).
        answered = driver.execute_script(ANSWERED_JS)
        for c in charts:
            if not c["drawn"]:
                fail(f"chart {c['id']} has no size")
            first = c["datasets"][0]
            # A 12-s run: 1-s points, and a last partial one. Rare steps (a
            # confirm is 1 flow in 10) have percentiles in a few of them, and
            # none if their few requests all failed or were still in flight at
            # the end (seen once under ASan on a busy box): then the latency
            # chart must be empty, not drawn from failures.
            busy = c["chart"] in ("rate", "load") or c["id"].startswith("chart-ingest-")
            want = 8 if busy else 1
            if c["chart"] == "latency" and not busy:
                timed = answered.get(c["id"][len("chart-"):-len("-latency")], 0)
                if timed == 0:
                    if first["numbers"] != 0:
                        fail(f"chart {c['id']}: {first['numbers']} latency points for a step "
                             "with no request answered ok or timed out")
                    continue
            if first["numbers"] < want:
                fail(f"chart {c['id']}: {first['label']} has {first['numbers']} data points")
        latency = next(c for c in charts if c["id"] == "chart-ingest-ingest-latency")
        p99 = next(d for d in latency["datasets"] if d["label"] == "p99")
        if not 0 < p99["max"] < 2000:
            fail(f"ingest p99 latency is {p99['max']} ms")
        rate = next(c for c in charts if c["id"] == "chart-ingest-rate")
        achieved = next(d for d in rate["datasets"] if d["label"] == "achieved (started)")
        if not 10 * RATE_SCALE < achieved["max"] < 40 * RATE_SCALE:
            fail(f"ingest achieved rate peaked at {achieved['max']}/s")
        verdict = driver.find_element("id", "verdict").text
        if verdict.lower() != "passed":
            fail(f"the verdict reads {verdict}")
        print(f"charts: {len(charts)} drawn, ingest p99 up to {p99['max']} ms")

        # Nothing but the file itself was requested: no script, style, font,
        # image or connection from anywhere.
        requests = []
        for entry in driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            if message["method"] == "Network.requestWillBeSent":
                requests.append(message["params"]["request"]["url"])
        if url not in requests:
            fail(f"the performance log does not show the page itself: {requests}")
        others = [u for u in requests if u != url]
        if others:
            fail(f"the report made requests: {others}")
        problems = [e["message"] for e in driver.get_log("browser")
                    if e["level"] in ("SEVERE", "WARNING")]
        if problems:
            fail(f"the browser reported problems (a CSP violation?): {problems}")
        print(f"requests: only the file itself ({len(requests)})")

        # The charts come in the status page's order (the config's scenarios,
        # which TOML tables keep by name).
        groups = driver.execute_script(
            "return [...document.querySelectorAll('.chart-group')].map((g) => g.dataset.scenario)")
        if groups != ["checkout", "ingest"]:
            fail(f"chart groups in the order {groups}")

        if args.screenshot:
            # The top of the report: verdict, thresholds, summary and the
            # first scenario's charts.
            driver.set_window_size(1360, 1280)
            driver.save_screenshot(args.screenshot)
            shrink_png(args.screenshot)
            print(f"screenshot: {args.screenshot}")
        print("report test passed")
    finally:
        if driver:
            driver.quit()
        if sim:
            sim.terminate()
            try:
                sim.wait(timeout=10)
            except subprocess.TimeoutExpired:
                sim.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
