#!/usr/bin/python3
"""The man pages say what the binaries do, and groff renders them without a warning.

polar-loadd(1) and polar-sim(1): the long options under OPTIONS are exactly those `--help` prints.
polar-loadd.toml(5): for every table it describes (a .SS heading in brackets), the keys it
describes are exactly those `polar-loadd --check-config` accepts there (read from the "unknown key;
allowed here: ..." error of a probe file), and it describes every scenario type and schedule type
the daemon knows (read from its "unknown ... type" errors). A new option or key therefore fails
here until the page describes it.

    man_test.py SOURCE_DIR POLAR_LOADD_BINARY POLAR_SIM_BINARY
"""
import os
import re
import subprocess
import sys
import tempfile

src, loadd, sim = sys.argv[1], sys.argv[2], sys.argv[3]
man_dir = os.path.join(src, "packaging", "man")
failures = []


def check(ok, message):
    if not ok:
        failures.append(message)


def read(name):
    with open(os.path.join(man_dir, name), encoding="utf-8") as f:
        return f.read()


def roff_text(line):
    """A roff line with its escapes for '-' undone."""
    return line.replace("\\-", "-")


def long_options(text):
    return set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", text))


def documented_options(page):
    """Long options named in the tags (the line after .TP) of the OPTIONS section."""
    section, tags, after_tp = None, set(), False
    for line in page.splitlines():
        if line.startswith(".SH "):
            section = line[4:].strip().strip('"')
        elif section == "OPTIONS":
            if line.startswith(".TP"):
                after_tp = True
                continue
            if after_tp:
                tags |= long_options(roff_text(line))
            after_tp = False
    return tags


def help_text(binary):
    out = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=30)
    check(out.returncode == 0, f"{binary} --help exited {out.returncode}")
    return out.stdout


for page_name, binary in (("polar-loadd.1", loadd), ("polar-sim.1", sim)):
    in_help = long_options(help_text(binary))
    in_page = documented_options(read(page_name))
    check(bool(in_help), f"{binary} --help names no option")
    for option in sorted(in_help - in_page):
        failures.append(f"packaging/man/{page_name}: {option} is in --help but not under OPTIONS")
    for option in sorted(in_page - in_help):
        failures.append(f"packaging/man/{page_name}: {option} is described but not in --help")
    print(f"{page_name}: {len(in_page & in_help)} options, as in --help")


def documented_tables(page):
    """{table heading: [keys]} from polar-loadd.toml(5): .SS "[...] ..." then .TP/.TQ + .B key."""
    tables, current, tag_next = {}, None, False
    for line in page.splitlines():
        if line.startswith(".SS "):
            heading = line[4:].strip()
            current = heading if heading.startswith("[") else None
            if current is not None:
                tables.setdefault(current, [])
            tag_next = False
        elif line.startswith(".SH "):
            current, tag_next = None, False
        elif line.startswith((".TP", ".TQ")):
            tag_next = True
        elif tag_next:
            tag_next = False
            m = re.match(r"\.B\s+([a-z_][a-z0-9_]*)\s*$", line)
            if current is not None and m:
                tables[current].append(m.group(1))
    return tables


def check_config(text):
    with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as f:
        f.write(text)
        path = f.name
    try:
        out = subprocess.run([loadd, "--check-config", "--config", path], capture_output=True,
                             text=True, timeout=30, env={"PATH": os.environ.get("PATH", "")})
        return out.stderr
    finally:
        os.unlink(path)


def allowed(errors, key_path):
    """The list in "KEY_PATH.zz_probe: unknown key; allowed here: a, b, c"."""
    m = re.search(re.escape(key_path) + r"\.zz_probe: unknown key; allowed here: ([^\n]*)", errors)
    return set(m.group(1).replace(" ", "").split(",")) if m else None


def types_named(errors, what):
    """The types listed in 'unknown WHAT type "zz_probe"; use a, b or c'."""
    m = re.search(r"unknown " + what + r' type "zz_probe"; use ([^\n]*)', errors)
    if not m:
        return None
    return set(re.findall(r"[a-z_]+", m.group(1))) - {"or", "and"}


page = read("polar-loadd.toml.5")
tables = documented_tables(page)
BASE = '[target]\nbase_url = "http://127.0.0.1:8000"\ntoken = "polar_oat_man_page_probe_token"\n'

# The fixed tables.
probe = BASE + "zz_probe = 1\n"
for table in ("metrics", "control", "daemon", "cluster", "webhooks"):
    probe += f"[{table}]\nzz_probe = 1\n"
probe += '[scenarios.s]\ntype = "event_ingestion"\nrate = "1/s"\n'
probe += "[scenarios.s.thresholds.ingest]\nzz_probe = 1\n"
errors = check_config(probe)
for table, key_path in (("target", "target"), ("metrics", "metrics"), ("control", "control"),
                        ("daemon", "daemon"), ("cluster", "cluster"), ("webhooks", "webhooks"),
                        ("scenarios.NAME.thresholds.STEP", "scenarios.s.thresholds.ingest")):
    heading = f"[{table}]"
    accepted = allowed(errors, key_path)
    check(accepted is not None, f"no 'allowed here' list for {key_path} in: {errors}")
    check(heading in tables, f"polar-loadd.toml.5 has no section {heading}")
    if accepted is None or heading not in tables:
        continue
    described = set(tables[heading])
    for key in sorted(accepted - described):
        failures.append(f"polar-loadd.toml.5 {heading}: {key} is accepted but not described")
    for key in sorted(described - accepted):
        failures.append(f"polar-loadd.toml.5 {heading}: {key} is described but not accepted")

# Scenario types: the common keys plus each type's own.
errors = check_config(BASE + '[scenarios.s]\ntype = "zz_probe"\nrate = "1/s"\n')
scenario_types = types_named(errors, "scenario")
check(scenario_types, f"no list of scenario types in: {errors}")
common = set(tables.get("[scenarios.NAME]", []))
check(common, "polar-loadd.toml.5 has no section [scenarios.NAME]")
for kind in sorted(scenario_types or []):
    heading = f'[scenarios.NAME] type = "{kind}"'
    check(heading in tables, f"polar-loadd.toml.5 has no section {heading}")
    accepted = allowed(check_config(BASE + f'[scenarios.s]\ntype = "{kind}"\nrate = "1/s"\n'
                                    "zz_probe = 1\n"), "scenarios.s")
    check(accepted is not None, f"no 'allowed here' list for a {kind} scenario")
    if accepted is None or heading not in tables:
        continue
    described = common | set(tables[heading])
    for key in sorted(accepted - described):
        failures.append(f"polar-loadd.toml.5 {heading}: {key} is accepted but not described")
    for key in sorted(described - accepted):
        failures.append(f"polar-loadd.toml.5 {heading}: {key} is described but not accepted")
for heading in tables:
    m = re.fullmatch(r'\[scenarios\.NAME\] type = "([a-z_]+)"', heading)
    if m and scenario_types is not None:
        check(m.group(1) in scenario_types, f"polar-loadd.toml.5 describes an unknown {heading}")

# Schedule types.
errors = check_config(BASE + '[scenarios.s]\ntype = "event_ingestion"\n'
                      '[scenarios.s.schedule]\ntype = "zz_probe"\n')
schedule_types = types_named(errors, "schedule")
check(schedule_types, f"no list of schedule types in: {errors}")
for kind in sorted(schedule_types or []):
    heading = f'[scenarios.NAME.schedule] type = "{kind}"'
    check(heading in tables, f"polar-loadd.toml.5 has no section {heading}")
    accepted = allowed(check_config(BASE + '[scenarios.s]\ntype = "event_ingestion"\n'
                                    f'[scenarios.s.schedule]\ntype = "{kind}"\nzz_probe = 1\n'),
                       "scenarios.s.schedule")
    check(accepted is not None, f"no 'allowed here' list for a {kind} schedule")
    if accepted is None or heading not in tables:
        continue
    described = set(tables[heading])
    for key in sorted(accepted - described):
        failures.append(f"polar-loadd.toml.5 {heading}: {key} is accepted but not described")
    for key in sorted(described - accepted):
        failures.append(f"polar-loadd.toml.5 {heading}: {key} is described but not accepted")
for heading in tables:
    m = re.fullmatch(r'\[scenarios\.NAME\.schedule\] type = "([a-z_]+)"', heading)
    if m and schedule_types is not None:
        check(m.group(1) in schedule_types, f"polar-loadd.toml.5 describes an unknown {heading}")
print(f"polar-loadd.toml.5: {sum(len(v) for v in tables.values())} keys in {len(tables)} tables, "
      f"{len(scenario_types or [])} scenario types, {len(schedule_types or [])} schedule types")

# groff: no warning (lintian's manpage check runs the same command).
for name in ("polar-loadd.1", "polar-sim.1", "polar-loadd.toml.5"):
    out = subprocess.run(["man", "--warnings", "-E", "UTF-8", "-l", "-Tutf8", "-Z",
                          os.path.join(man_dir, name)], capture_output=True, text=True,
                         timeout=60, env={**os.environ, "MANWIDTH": "80"})
    check(out.returncode == 0 and not out.stderr.strip(),
          f"packaging/man/{name}: groff says: {out.stderr.strip()} (exit {out.returncode})")

if failures:
    for f in failures:
        print("FAIL:", f, file=sys.stderr)
    sys.exit(1)
print("man pages OK")
