#!/usr/bin/python3
"""Every metric family polar-loadd exports is in docs/metrics.md's metric table, with its type and
labels, and every family the table lists is exported (ctest label `docs`).

    metrics_test.py SOURCE_DIR POLAR_LOADD_BINARY POLAR_SIM_BINARY

polar-loadd runs for a few seconds against polar-sim with the shipped example config
(packaging/polar-loadd.toml, which has a scenario of every type the parser knows and the webhook
receiver registering its endpoint), its ports moved by the variables instances sharing a file use.
The families come from the `# TYPE` lines of /metrics. Every family must be registered with its
series at start, whatever the traffic: the only one created on first use,
polar_loadd_control_actions_total, is triggered here with one refused control request (POST
.../pause without a token: result no_token_configured, as the example has no [control] token).

Names: a histogram family `x` has the samples `x_bucket` (label `le`), `x_sum` and `x_count`; a
counter's family name carries its `_total`, as prometheus-cpp writes it; a sample that belongs to
no family is a failure too. `process_*` are ours (exporters/metrics.cc) and documented like the
rest. The documented table is the one whose columns include `name` and `type`; the recorded series
(no `type` column) belong to the Prometheus rules and are checked by tests/grafana/check_grafana.py.
"""
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import tomllib

sys.dont_write_bytecode = True  # nothing written into the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import markdown  # noqa: E402  (tests/support/markdown.py)
from config_keys import ConfigKeys  # noqa: E402  (tests/support/config_keys.py)

DOC = "docs/metrics.md"
EXAMPLE = "packaging/polar-loadd.toml"
# How long families may take to appear (the endpoint registration is the slowest: one round trip
# to polar-sim after start), and the whole run's bound.
SETTLE_SECONDS = 15
failures = []


def fail(message):
    failures.append(message)


def documented(text):
    """{family: (type, {labels}, line)} from the table with `name` and `type` columns."""
    out = {}
    for table in markdown.tables(text):
        name, kind, labels = (table.column(c) for c in ("name", "type", "labels"))
        if name is None or kind is None or labels is None:
            continue
        for row, line in zip(table.rows, table.lines):
            words = markdown.code_words(row[name])
            if len(words) != 1:
                fail(f"{DOC}:{line}: the name cell should be one metric in code: {row[name]!r}")
                continue
            if words[0] in out:
                fail(f"{DOC}:{line}: {words[0]} is listed twice")
            found = {x.strip() for x in row[labels].split(",") if x.strip()}
            out[words[0]] = (row[kind].strip(), found, line)
    if not out:
        fail(f"{DOC}: no table with name, type and labels columns")
    return out


def exposition(text):
    """({family: type}, {family: {label names}}, [samples that belong to no family])."""
    types = {}
    for m in re.finditer(r"^# TYPE (\S+) (\S+)$", text, re.M):
        types[m.group(1)] = m.group(2)
    suffixes = {"histogram": ("_bucket", "_sum", "_count"), "summary": ("", "_sum", "_count"),
                "counter": ("", "_total", "_created")}
    owner = {}
    for family, kind in types.items():
        for suffix in suffixes.get(kind, ("",)):
            owner[family + suffix] = family
    labels, orphans = {f: set() for f in types}, []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s", line)
        if not m:
            orphans.append(line)
            continue
        family = owner.get(m.group(1))
        if family is None:
            orphans.append(m.group(1))
            continue
        names = set(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="', m.group(2) or ""))
        if types[family] == "histogram" and m.group(1).endswith("_bucket"):
            names.discard("le")
        if types[family] == "summary":
            names.discard("quantile")
        labels[family] |= names
    return types, labels, orphans


def free_port():
    """A free port on 127.0.0.1 (bound, read back, released): the webhook receiver's register_url
    must name its port before it starts."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(method, url, timeout=5):
    m = re.match(r"http://([^/:]+):(\d+)(/.*)", url)
    conn = http.client.HTTPConnection(m.group(1), int(m.group(2)), timeout=timeout)
    try:
        conn.request(method, m.group(3), body=b"" if method == "POST" else None)
        r = conn.getresponse()
        return r.status, r.read().decode("utf-8", "replace")
    finally:
        conn.close()


def stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def scrape_running_daemon(source, loadd, sim, families_wanted, scenario):
    """The shipped example against polar-sim: /metrics once every wanted family is there (or
    SETTLE_SECONDS passed), after one refused control request."""
    with tempfile.TemporaryDirectory() as tmp:
        sim_err = open(os.path.join(tmp, "sim.err"), "w+")
        sim_proc = subprocess.Popen([sim, "--listen", "127.0.0.1:0", "--allow-loopback-webhooks"],
                                    stdout=subprocess.PIPE, stderr=sim_err, text=True)
        loadd_proc = None
        try:
            line = sim_proc.stdout.readline()
            if not line:
                sim_err.seek(0)
                raise RuntimeError("polar-sim did not start: " + sim_err.read())
            ready = json.loads(line)
            port = free_port()
            env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                   "LOAD_TEST_HOST": ready["base_url"], "LOAD_TEST_API_TOKEN": ready["token"],
                   "POLAR_LOADD_METRICS_LISTEN": "127.0.0.1:0",
                   "POLAR_LOADD_WEBHOOKS_LISTEN": f"127.0.0.1:{port}",
                   "POLAR_LOADD_WEBHOOKS_REGISTER_URL": f"http://127.0.0.1:{port}/webhooks/polar"}
            err_path = os.path.join(tmp, "loadd.err")
            with open(err_path, "w") as err:
                loadd_proc = subprocess.Popen([loadd, "--config", os.path.join(source, EXAMPLE)],
                                              stdout=subprocess.DEVNULL, stderr=err, env=env)
            deadline = time.monotonic() + SETTLE_SECONDS
            url = None
            while url is None and time.monotonic() < deadline and loadd_proc.poll() is None:
                with open(err_path) as f:
                    m = re.search(r"metrics on (http://\S+/metrics)", f.read())
                url = m.group(1) if m else None
                time.sleep(0.05)
            if url is None:
                with open(err_path) as f:
                    raise RuntimeError(f"polar-loadd did not serve /metrics:\n{f.read()}")
            base = url[:-len("/metrics")]
            status, body = request("POST", f"{base}/api/scenarios/{scenario}/pause")
            if status not in (401, 403):
                fail(f"a control request without a token got {status}, not 401 or 403: {body}")
            while True:
                status, text = request("GET", url)
                types = set(re.findall(r"^# TYPE (\S+) ", text, re.M))
                if families_wanted <= types or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            if status != 200:
                fail(f"GET /metrics answered {status}")
            return text
        finally:
            if loadd_proc is not None:
                stop(loadd_proc)
            stop(sim_proc)
            sim_proc.stdout.close()
            sim_err.close()


def main():
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        return 64
    source, loadd, sim = sys.argv[1:]
    with open(os.path.join(source, DOC), encoding="utf-8") as f:
        docs = documented(f.read())

    # The example must exercise every scenario type, or a type's metrics could go unseen.
    with open(os.path.join(source, EXAMPLE), "rb") as f:
        example = tomllib.load(f)
    kinds = {s.get("type") for s in example.get("scenarios", {}).values()}
    for kind in ConfigKeys(loadd).scenario_types:
        if kind not in kinds:
            fail(f"{EXAMPLE} has no {kind} scenario, so its metrics go unchecked here")
    if "webhooks" not in example:
        fail(f"{EXAMPLE} has no [webhooks] table, so the receiver's metrics go unchecked here")

    text = scrape_running_daemon(source, loadd, sim, set(docs), min(example["scenarios"]))
    types, labels, orphans = exposition(text)
    for family in sorted(types.keys() - docs.keys()):
        fail(f"{DOC}: {family} ({types[family]}) is exported but not in the metric table")
    for family in sorted(docs.keys() - types.keys()):
        fail(f"{DOC}:{docs[family][2]}: {family} is documented but not exported (registered "
             "lazily, renamed or gone?)")
    for family in sorted(types.keys() & docs.keys()):
        kind, documented_labels, line = docs[family]
        if kind != types[family]:
            fail(f"{DOC}:{line}: {family} is documented as a {kind}, exported as a "
                 f"{types[family]}")
        if documented_labels != labels[family]:
            fail(f"{DOC}:{line}: {family} is documented with labels "
                 f"{sorted(documented_labels) or 'none'}, exported with "
                 f"{sorted(labels[family]) or 'none'}")
    for sample in sorted(set(orphans)):
        fail(f"/metrics: {sample} belongs to no # TYPE family")

    for message in failures:
        print("FAIL:", message, file=sys.stderr)
    if failures:
        return 1
    print(f"metrics: {len(types)} families exported, {len(docs)} in {DOC}, the same, with "
          "their types and labels")
    return 0


if __name__ == "__main__":
    sys.exit(main())
