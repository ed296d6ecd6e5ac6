#!/usr/bin/python3
"""Static checks of polar-loadd's dashboards and Prometheus rules (ctest: label `rules`).

  check_grafana.py dashboards SOURCE_DIR   dashboards are valid and query only documented metrics
  check_grafana.py rules SOURCE_DIR        alerts are complete and tested firing and not firing
  check_grafana.py runbooks SOURCE_DIR     every alert's runbook_url reaches its own section of
                                           docs/runbooks.md (ctest label `docs`)
  check_grafana.py config SOURCE_DIR       packaging/prometheus.yml and grafana/provisioning agree
                                           with the installed layout and load the shipped rules;
                                           packaging/alertmanager.yml names only alerts and labels
                                           the rules have

Dashboards: valid JSON; unique uids and panel ids; data source, job, namespace, instance and
scenario variables, and "All" for scenario and step is the values offered (never ".*"); every
panel (rows aside) has a query; every query and annotation, once Grafana's variables are
substituted, parses (promtool check rules on a throwaway rule file) and filters on $job and
$namespace ($instance too unless it reads fleet-level series only); time series panels use
$__rate_interval or $__range; every quantile is histogram_quantile over `sum by (le, ...)` of
bucket rates (aggregatable across load boxes), no quantile is averaged, summed or maxed again, no
legend shows the mean of a quantile, and every rate of a polar_loadd counter is summed (rules
too); every metric name used is listed in docs/metrics.md, and every metric listed there is on a
panel or in a rule.

Rules: every metric and recording rule name used is in docs/metrics.md; no `le` is matched as a
whole number ("1": Prometheus 3 stores "1.0"); every alert has a severity, a summary, a
description and a runbook_url `<RUNBOOK_BASE>#<alert name in lower case>` (RUNBOOK_BASE from
grafana/generate-dashboards: an absolute URL of docs/runbooks.md); the promtool tests in
grafana/rules/tests/ check every alert both firing and not firing, and each fixture evaluates the
rule groups in file order (group_eval_order).

Runbooks: each alert's runbook_url, relative to the repository or an absolute URL of
docs/runbooks.md, has an anchor that is, by GitHub's rules (tests/support/markdown.py), a heading
of docs/runbooks.md naming the alert; and every section there named for an alert (a heading that
starts with a CamelCase name) is for an alert that exists.
"""
import json
import re
import subprocess
import sys
import tempfile
import urllib.parse
from pathlib import Path

import yaml

sys.dont_write_bytecode = True  # nothing written into the source tree
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "support"))
import markdown  # noqa: E402  (tests/support/markdown.py: GitHub's heading anchors)

# Grafana variables -> values a query can be checked with ("All" is ".*").
GRAFANA_VARS = {"$__rate_interval": "5m", "$__range": "1h", "$__interval": "1m",
                "$instance": ".*", "$scenario": ".*", "$job": ".*", "$namespace": ".*",
                "$step": ".*", "$change": "end()"}
# Prometheus's own series: not ours to document.
BUILTIN_METRICS = {"up", "ALERTS"}
# Series without an instance label (fleet-level): a query reading only these needs no $instance.
FLEET_SERIES = {"ALERTS", "polar_loadd:request_service_regressed_boxes:ratio",
                "polar_loadd:slo_latency_objective_seconds"}
PROMQL_WORDS = {
    "sum", "min", "max", "avg", "count", "stddev", "stdvar", "topk", "bottomk", "quantile",
    "count_values", "group", "by", "without", "on", "ignoring", "group_left", "group_right",
    "and", "or", "unless", "bool", "offset", "inf", "nan", "le",
}

errors = []


def fail(msg):
    errors.append(msg)


def substitute(expr):
    for k, v in GRAFANA_VARS.items():
        expr = expr.replace(k, v)
    return expr


def metric_names(expr):
    """Metric and recording-rule names referenced by a PromQL expression (a lexer, not a
    parser: enough for the expressions in this repository)."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)          # string literals
    e = re.sub(r"\{[^}]*\}", "", e)                        # label matchers
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", r"\1", e)
    e = re.sub(r"\[[^\]]*\]", "", e)                       # range selectors
    e = re.sub(r"\boffset\s+\w+", "", e)
    e = re.sub(r"@\s*(\$\w+|end\(\)|start\(\)|[0-9.]+)", "", e)   # @ modifiers
    e = re.sub(r"\$\w+", "", e)                           # Grafana variables
    names = set()
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", e):
        word = m.group(0)
        rest = e[m.end():].lstrip()
        if rest.startswith("("):                           # function call
            continue
        if word.lower() in PROMQL_WORDS:
            continue
        if re.fullmatch(r"[0-9a-fA-Fx.e]+", word):
            continue
        names.add(word)
    return names


def documented_names(source):
    text = (source / "docs/metrics.md").read_text()
    return set(re.findall(r"`([a-zA-Z_:][a-zA-Z0-9_:]*)`", text))


def catalogued_metrics(source):
    """The metrics polar-loadd exports: the first table of docs/metrics.md."""
    text = (source / "docs/metrics.md").read_text().split("\n## ")[0]
    return set(re.findall(r"^\| `((?:polar_loadd_|process_)[a-z_]+)` \|", text, re.M))


def check_documented(names, where, documented):
    for name in sorted(names):
        base = re.sub(r"_(bucket|count|sum)$", "", name)
        if name in BUILTIN_METRICS:
            continue
        if name not in documented and base not in documented:
            fail(f"{where}: metric {name} is not listed in docs/metrics.md")


def check_quantiles(expr, where):
    n = expr.count("histogram_quantile(")
    good = re.findall(
        r"histogram_quantile\(\s*[0-9.]+\s*,\s*sum by \(([^)]*)\)\s*\(\s*rate\(\s*[a-z_:]+_bucket\b",
        expr)
    if len(good) != n or any("le" not in [x.strip() for x in g.split(",")] for g in good):
        fail(f"{where}: quantiles must be histogram_quantile(q, sum by (le, ...) "
             f"(rate(..._bucket[...]))) to aggregate across load boxes: {expr}")


AGGREGATORS = {"sum", "min", "max", "avg", "count", "stddev", "stdvar", "quantile", "topk",
               "bottomk", "group"}


def enclosing_calls(expr, pos):
    """The functions and aggregations whose argument list contains expr[pos], innermost first
    (`sum by (le) (rate(x[5m]))` at rate: ["sum"])."""
    calls = []
    depth = 0
    i = pos - 1
    while i >= 0:
        c = expr[i]
        if c == ")":
            depth += 1
        elif c == "(":
            if depth:
                depth -= 1
            else:
                before = expr[:i].rstrip()
                # `agg by (labels) (` or `agg without (labels) (`: skip the label list.
                if before.endswith(")"):
                    d, j = 0, len(before) - 1
                    while j >= 0:
                        d += before[j] == ")"
                        d -= before[j] == "("
                        if d == 0:
                            break
                        j -= 1
                    m = re.search(r"(\w+)\s+(?:by|without)\s*$", before[:j])
                    calls.append(m.group(1) if m else "")
                else:
                    m = re.search(r"(\w+)\s*$", before)
                    calls.append(m.group(1) if m else "")
        i -= 1
    return calls


def argument(expr, open_paren):
    """The text between expr[open_paren] == '(' and its matching ')'."""
    depth = 0
    for i in range(open_paren, len(expr)):
        depth += expr[i] == "("
        depth -= expr[i] == ")"
        if depth == 0:
            return expr[open_paren + 1:i]
    return expr[open_paren + 1:]


def check_aggregation(expr, where):
    """Correct with several load boxes (N instances sharing a plan, or independent boxes):
    nothing aggregates a quantile (an average or sum of per-box p99s is not a p99: sum the bucket
    rates, then take the quantile), and every rate of a polar_loadd counter is summed, so a panel or
    rule is the fleet or explicitly per box (`by (instance)`), never N unlabelled lines that look
    like one. process_* are per process by nature and may stay per instance."""
    for m in re.finditer(r"\b(\w+)\s*(?:(?:by|without)\s*\([^)]*\)\s*)?\(", expr):
        name = m.group(1)
        if name not in AGGREGATORS and not name.endswith("_over_time"):
            continue
        arg = argument(expr, m.end() - 1)
        if "histogram_quantile(" in arg or re.search(r":p\d+_", arg):
            fail(f"{where}: {name}(...) over a quantile does not aggregate across load boxes; "
                 f"sum the bucket rates, then histogram_quantile: {expr}")
    for m in re.finditer(r"\b(rate|increase)\(\s*([a-zA-Z_:]+)", expr):
        if m.group(2).startswith("process_"):
            continue
        if not any(c in ("sum", "count") for c in enclosing_calls(expr, m.start())):
            fail(f"{where}: {m.group(1)}({m.group(2)}...) is not summed: with several load boxes "
                 f"sum it (by instance for a per-box view): {expr}")


def promtool_parse(exprs):
    """Checks that every expression parses, by loading them as recording rules."""
    rules = [{"record": f"check:expr_{i}", "expr": e} for i, (_, e) in enumerate(exprs)]
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as f:
        yaml.safe_dump({"groups": [{"name": "dashboard-queries", "rules": rules}]}, f)
        path = f.name
    r = subprocess.run(["promtool", "check", "rules", path], capture_output=True, text=True)
    Path(path).unlink()
    if r.returncode != 0:
        # promtool names the failing rule (check:expr_N); N indexes the list below.
        fail("promtool rejects a dashboard query:\n" + r.stdout + r.stderr + "\nqueries:\n" +
             "\n".join(f"  [{i}] {w}: {e}" for i, (w, e) in enumerate(exprs)))


def check_dashboards(source):
    documented = documented_names(source)
    files = sorted((source / "grafana/dashboards").glob("*.json"))
    if len(files) < 5:
        fail(f"expected the five dashboards in grafana/dashboards, found {len(files)}")
    uids = set()
    exprs = []
    used = set()
    for path in files:
        try:
            d = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            fail(f"{path.name}: not valid JSON: {e}")
            continue
        uid = d.get("uid")
        if not uid or uid in uids:
            fail(f"{path.name}: missing or duplicate uid {uid!r}")
        uids.add(uid)
        if not d.get("title"):
            fail(f"{path.name}: no title")
        variables = {v.get("name"): v for v in d.get("templating", {}).get("list", [])}
        for needed in ("datasource", "job", "namespace", "instance", "scenario"):
            if needed not in variables:
                fail(f"{path.name}: no ${needed} variable")
        if variables.get("datasource", {}).get("type") != "datasource":
            fail(f"{path.name}: $datasource must be a data source variable")
        for name in ("scenario", "step"):
            if variables.get(name, {}).get("allValue"):
                fail(f"{path.name}: ${name} has allValue {variables[name]['allValue']!r}: 'All' "
                     f"must be the values offered, or other scenarios' steps show up")
        for name, v in variables.items():
            if v.get("type") != "query":
                continue
            q = v.get("query")
            q = q.get("query") if isinstance(q, dict) else q
            m = (re.fullmatch(r"label_values\((.*),\s*([a-zA-Z_]+)\)", q or "")
                 or re.fullmatch(r"query_result\((.*)\)()", q or ""))
            if not m:
                fail(f"{path.name}: variable {name}: expected label_values(selector, label) or "
                     f"query_result(expr): {q}")
                continue
            where = f"{path.name}: variable {name}"
            exprs.append((where, substitute(m.group(1))))
            names = metric_names(m.group(1))
            used |= names
            check_documented(names, where, documented)
        for a in d.get("annotations", {}).get("list", []):
            if a.get("builtIn"):
                continue
            where = f"{path.name}: annotation {a.get('name')!r}"
            expr = a.get("expr", "")
            check_filters(expr, where)
            check_aggregation(expr, where)
            names = metric_names(expr)
            used |= names
            check_documented(names, where, documented)
            exprs.append((where, substitute(expr)))
        ids = set()
        panels = d.get("panels", [])
        if not panels:
            fail(f"{path.name}: no panels")
        for p in panels:
            pid = p.get("id")
            if pid in ids:
                fail(f"{path.name}: duplicate panel id {pid}")
            ids.add(pid)
            where = f"{path.name}: panel {p.get('title')!r}"
            gp = p.get("gridPos", {})
            if gp.get("x", 0) + gp.get("w", 0) > 24:
                fail(f"{where}: wider than the 24-column grid")
            if p.get("type") == "row":
                continue
            if p.get("datasource", {}).get("uid") != "${datasource}":
                fail(f"{where}: data source must be ${{datasource}}")
            targets = p.get("targets") or []
            if not targets:
                fail(f"{where}: no query")
            calcs = p.get("options", {}).get("legend", {}).get("calcs", [])
            for t in targets:
                expr = t.get("expr", "").strip()
                if not expr:
                    fail(f"{where}: target {t.get('refId')} has no expr")
                    continue
                check_filters(expr, where)
                # A time series follows the zoom; an instant panel (stat, bar gauge, table) may
                # show a fixed window, such as the hour before a change.
                ranges = re.findall(r"\[([^\]]*)\]", expr)
                if p.get("type") in ("timeseries", "heatmap") and any(
                        r not in ("$__rate_interval", "$__range") for r in ranges):
                    fail(f"{where}: range selectors must use $__rate_interval or $__range: {expr}")
                if "histogram_quantile(" in expr and "mean" in calcs:
                    fail(f"{where}: the legend shows the mean of a quantile, which is no "
                         f"quantile of anything: {calcs}")
                check_quantiles(expr, where)
                check_aggregation(expr, where)
                names = metric_names(expr)
                used |= names
                check_documented(names, where, documented)
                exprs.append((where, substitute(expr)))
    # Every exported metric earns its place: on a panel or in a rule.
    for path in sorted((source / "grafana/rules").glob("*.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                used |= metric_names(rule["expr"])
    used = {re.sub(r"_(bucket|count|sum)$", "", n) for n in used}
    for name in sorted(catalogued_metrics(source) - used):
        fail(f"docs/metrics.md lists {name}, but no dashboard panel or rule uses it")
    if exprs:
        promtool_parse(exprs)
    return len(exprs)


def check_filters(expr, where):
    """Every query follows the job and namespace variables; per-box series the instance too."""
    for var in ("$job", "$namespace"):
        if var not in expr:
            fail(f"{where}: query ignores the {var} variable: {expr}")
    if "$instance" not in expr and not metric_names(expr) <= FLEET_SERIES:
        fail(f"{where}: query ignores the $instance variable: {expr}")


def runbook_base(source):
    m = re.search(r'^RUNBOOK_BASE = "([^"]+)"', (source / "grafana/generate-dashboards").read_text(),
                  re.M)
    return m.group(1) if m else ""


def check_rules(source):
    documented = documented_names(source)
    base = runbook_base(source)
    if not re.fullmatch(r"https?://\S+/docs/runbooks\.md", base):
        fail(f"grafana/generate-dashboards: RUNBOOK_BASE should be an absolute URL of "
             f"docs/runbooks.md, is {base!r}")
    alerts = {}
    groups = []
    for path in sorted((source / "grafana/rules").glob("*.yml"), key=lambda p: "alerts" in p.name):
        doc = yaml.safe_load(path.read_text())
        for group in doc["groups"]:
            groups.append(group["name"])
            for rule in group["rules"]:
                expr = rule["expr"]
                if "record" in rule:
                    where = f"{path.name}: {rule['record']}"
                    if rule["record"] not in documented:
                        fail(f"{where}: recording rule not listed in docs/metrics.md")
                else:
                    name = rule["alert"]
                    where = f"{path.name}: {name}"
                    alerts[name] = rule
                    labels = rule.get("labels", {})
                    ann = rule.get("annotations", {})
                    if labels.get("severity") not in ("critical", "warning"):
                        fail(f"{where}: severity must be critical or warning")
                    for key in ("summary", "description", "runbook_url"):
                        if not ann.get(key):
                            fail(f"{where}: no {key} annotation")
                    url = ann.get("runbook_url", "")
                    if url != f"{base}#{name.lower()}":
                        fail(f"{where}: runbook_url should be {base}#{name.lower()}, is {url}")
                # Prometheus 3 stores le="1" as le="1.0": a whole-number `le` must be matched in
                # both spellings (le=~"10|10\\.0") or after the recording rules normalise it.
                for m in re.finditer(r'\ble\s*=\s*"(\d+)"', expr):
                    fail(f"{where}: le=\"{m.group(1)}\" never matches on Prometheus 3 "
                         f"(le=\"{m.group(1)}.0\"): {expr}")
                check_quantiles(expr, where)
                check_aggregation(expr, where)
                check_documented(metric_names(expr), where, documented)
    fires, quiet = set(), set()
    for path in sorted((source / "grafana/rules/tests").glob("*.yml")):
        doc = yaml.safe_load(path.read_text())
        # promtool evaluates groups in an unspecified order unless told; each group must see the
        # series of the groups before it at the same evaluation, as the rule files order them.
        if doc.get("group_eval_order") != groups:
            fail(f"{path.name}: group_eval_order should be the rule groups in file order: "
                 f"{groups}")
        for test in doc.get("tests", []):
            for art in test.get("alert_rule_test", []) or []:
                name = art["alertname"]
                if name not in alerts:
                    fail(f"{path.name}: tests unknown alert {name}")
                (fires if art.get("exp_alerts") else quiet).add(name)
    for name in sorted(alerts):
        if name not in fires:
            fail(f"no promtool test in grafana/rules/tests shows {name} firing")
        if name not in quiet:
            fail(f"no promtool test in grafana/rules/tests shows {name} not firing")
    return len(alerts)


# Where the .deb installs grafana/ (grafana/README.md).
INSTALLED_RULES = "/usr/share/polar-loadd/rules/*.yml"
INSTALLED_DASHBOARDS = "/usr/share/polar-loadd/dashboards"


def check_config(source):
    """The example scrape config names the installed rules and the job the alerts match, and is
    valid for promtool once its rule path points at the source tree's rules."""
    prom = yaml.safe_load((source / "packaging/prometheus.yml").read_text())
    if prom.get("rule_files") != [INSTALLED_RULES]:
        fail(f"packaging/prometheus.yml: rule_files should be [{INSTALLED_RULES}]")
    jobs = [j.get("job_name") for j in prom.get("scrape_configs", [])]
    if "polar-loadd" not in jobs:
        fail("packaging/prometheus.yml: no job_name polar-loadd (the alerts match it)")
    prom["rule_files"] = [str(source / "grafana/rules/*.yml")]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "prometheus.yml"
        path.write_text(yaml.safe_dump(prom))
        r = subprocess.run(["promtool", "check", "config", str(path)],
                           capture_output=True, text=True)
        out = r.stdout + r.stderr
        if r.returncode != 0:
            fail("promtool check config packaging/prometheus.yml:\n" + out)
        if len(re.findall(r"SUCCESS: \d+ rules found", out)) != 2:
            fail("packaging/prometheus.yml did not load both rule files:\n" + out)

    ds = yaml.safe_load((source / "grafana/provisioning/datasources/polar-loadd.yml").read_text())
    uids = [d.get("uid") for d in ds.get("datasources", []) if d.get("type") == "prometheus"]
    if ds.get("apiVersion") != 1 or len(uids) != 1:
        fail("grafana/provisioning/datasources: expected apiVersion 1 and one Prometheus")
    for path in sorted((source / "grafana/dashboards").glob("*.json")):
        d = json.loads(path.read_text())
        var = [v for v in d["templating"]["list"] if v["name"] == "datasource"][0]
        if var.get("current", {}).get("value") not in uids:
            fail(f"{path.name}: $datasource should default to the provisioned uid {uids}")
    dash = yaml.safe_load((source / "grafana/provisioning/dashboards/polar-loadd.yml").read_text())
    paths = [p.get("options", {}).get("path") for p in dash.get("providers", [])]
    if dash.get("apiVersion") != 1 or paths != [INSTALLED_DASHBOARDS]:
        fail(f"grafana/provisioning/dashboards: one file provider at {INSTALLED_DASHBOARDS}")
    check_alertmanager(source)
    return len(jobs)


def alert_rules(source):
    """{alert name: (rule file name, rule)} over grafana/rules/*.yml."""
    alerts = {}
    for path in sorted((source / "grafana/rules").glob("*.yml")):
        for group in yaml.safe_load(path.read_text()).get("groups", []):
            for rule in group.get("rules", []):
                if "alert" in rule:
                    alerts[rule["alert"]] = (path.name, rule)
    return alerts


# A heading whose first word is a CamelCase name (PolarLoaddDown) is an alert's runbook.
ALERT_HEADING = re.compile(r"([A-Z][a-z0-9]+(?:[A-Z][A-Za-z0-9]*)+)\b")


def check_runbooks(source):
    """Each alert's runbook_url reaches, by GitHub's anchor rules, a heading of docs/runbooks.md
    that names the alert, and each section there named for an alert is for an existing one."""
    runbooks = (source / "docs/runbooks.md").read_text()
    anchors = markdown.anchors(runbooks)
    alerts = alert_rules(source)
    if not alerts:
        fail("no alerts in grafana/rules/*.yml")
    for name, (file, rule) in sorted(alerts.items()):
        where = f"{file}: {name}"
        url = rule.get("annotations", {}).get("runbook_url", "")
        parts = urllib.parse.urlsplit(url)
        # Relative to the repository's root, or an absolute URL of the file (a GitHub page).
        path_ok = (parts.path == "docs/runbooks.md" if not parts.scheme
                   else parts.path.endswith("/docs/runbooks.md"))
        if not path_ok or not parts.fragment:
            fail(f"{where}: runbook_url should be docs/runbooks.md#<anchor> (or an absolute URL "
                 f"of that file with an anchor), is {url!r}")
            continue
        heading = anchors.get(urllib.parse.unquote(parts.fragment))
        if heading is None:
            fail(f"{where}: runbook_url {url}: docs/runbooks.md has no heading with the anchor "
                 f"#{parts.fragment}")
        elif not re.search(rf"\b{re.escape(name)}\b", heading):
            fail(f"{where}: runbook_url {url} reaches the section '{heading}', which is not "
                 f"{name}'s")
    for level, heading, line in markdown.headings(runbooks):
        m = ALERT_HEADING.match(heading)
        if level > 1 and m and m.group(1) not in alerts:
            fail(f"docs/runbooks.md:{line}: section '{heading}' is for {m.group(1)}, which is "
                 "not an alert in grafana/rules/")
    return len(alerts)


# Labels that identify what an alert is about (the rules' `by` lists).
ALERT_LABELS = {"job", "namespace", "instance", "scenario", "step", "le", "kind", "type",
                "measure"}


def check_alertmanager(source):
    """The example Alertmanager config routes and inhibits by alerts and labels that exist:
    a renamed alert or label would silently stop an inhibit rule."""
    path = source / "packaging/alertmanager.yml"
    am = yaml.safe_load(path.read_text())
    alerts = {}
    for f in sorted((source / "grafana/rules").glob("*.yml")):
        for group in yaml.safe_load(f.read_text())["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    alerts[rule["alert"]] = rule.get("labels", {})
    static = {k: set() for a in alerts.values() for k in a}
    for a in alerts.values():
        for k, v in a.items():
            static[k].add(v)

    def check_matchers(matchers, where):
        for m in matchers:
            mm = re.fullmatch(r'(\w+)\s*(=~|!~|!=|=)\s*"(.*)"', m)
            if not mm:
                fail(f"packaging/alertmanager.yml: {where}: cannot read matcher {m!r}")
                continue
            name, op, value = mm.groups()
            if name == "alertname":
                hits = [a for a in alerts if (re.fullmatch(value, a) if "~" in op else a == value)]
                if not hits:
                    fail(f"packaging/alertmanager.yml: {where}: {m} matches no alert in the rules")
            elif name in static:
                if op == "=" and value not in static[name]:
                    fail(f"packaging/alertmanager.yml: {where}: no alert has {name}={value}")
            elif name not in ALERT_LABELS:
                fail(f"packaging/alertmanager.yml: {where}: no alert has a label {name}")

    for i, r in enumerate(am.get("inhibit_rules", [])):
        where = f"inhibit rule {i + 1}"
        check_matchers(r.get("source_matchers", []), where)
        check_matchers(r.get("target_matchers", []), where)
        for label in r.get("equal", []):
            if label not in ALERT_LABELS:
                fail(f"packaging/alertmanager.yml: {where}: equal on {label}, which no alert has")
    route = am.get("route", {})
    for sub in [route] + route.get("routes", []):
        check_matchers(sub.get("matchers", []), "route")
    for label in route.get("group_by", []):
        if label != "alertname" and label not in ALERT_LABELS:
            fail(f"packaging/alertmanager.yml: route groups by {label}, which no alert has")
    names = {r["name"] for r in am.get("receivers", [])}
    for sub in [route] + route.get("routes", []):
        if sub.get("receiver") not in names:
            fail(f"packaging/alertmanager.yml: route to an undefined receiver {sub.get('receiver')}")


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("dashboards", "rules", "runbooks", "config"):
        print(__doc__, file=sys.stderr)
        return 64
    source = Path(sys.argv[2]).resolve()
    if sys.argv[1] == "dashboards":
        n = check_dashboards(source)
        what = f"{n} dashboard queries"
    elif sys.argv[1] == "rules":
        n = check_rules(source)
        what = f"{n} alerts"
    elif sys.argv[1] == "runbooks":
        n = check_runbooks(source)
        what = f"{n} alerts, each with its runbook section"
    else:
        n = check_config(source)
        what = f"{n} scrape jobs and the Grafana provisioning"
    for e in errors:
        print(e, file=sys.stderr)
    if errors:
        print(f"check_grafana: {len(errors)} problems", file=sys.stderr)
        return 1
    print(f"check_grafana: {what} ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
