#!/usr/bin/python3
"""The man pages say what the binaries do, and groff renders them without a warning.

polar-loadd(1) and polar-sim(1): the long options under OPTIONS are exactly those `--help` prints.
polar-loadd.toml(5): for every table it describes (a .SS heading in brackets), the keys it
describes are exactly those the config parser accepts there, and it describes every scenario type
and schedule type the daemon knows (both read from the binary by tests/support/config_keys.py). A
new option or key therefore fails here until the page describes it.

    man_test.py SOURCE_DIR POLAR_LOADD_BINARY POLAR_SIM_BINARY
"""
import os
import re
import subprocess
import sys

sys.dont_write_bytecode = True  # nothing written into the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from config_keys import ConfigKeys  # noqa: E402  (tests/support/config_keys.py)

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


page = read("polar-loadd.toml.5")
tables = documented_tables(page)
schema = ConfigKeys(loadd)
accepted_in = schema.tables()


def compare(heading, accepted, described):
    for key in sorted(accepted - described):
        failures.append(f"polar-loadd.toml.5 {heading}: {key} is accepted but not described")
    for key in sorted(described - accepted):
        failures.append(f"polar-loadd.toml.5 {heading}: {key} is described but not accepted")


# The fixed tables, and a step's thresholds.
for table in sorted(t for t in accepted_in if not t.startswith("scenarios.")) + \
        ["scenarios.<name>.thresholds.<step>"]:
    heading = "[" + table.replace("<name>", "NAME").replace("<step>", "STEP") + "]"
    check(heading in tables, f"polar-loadd.toml.5 has no section {heading}")
    if heading in tables:
        compare(heading, accepted_in[table], set(tables[heading]))

# Scenario types: the common keys plus each type's own (the keys of their sub-tables, such as
# funnel's, are described in their key's paragraph).
common = set(tables.get("[scenarios.NAME]", []))
check(common, "polar-loadd.toml.5 has no section [scenarios.NAME]")
for kind in schema.scenario_types:
    heading = f'[scenarios.NAME] type = "{kind}"'
    check(heading in tables, f"polar-loadd.toml.5 has no section {heading}")
    if heading in tables:
        compare(heading, accepted_in["scenarios.<name>"] |
                accepted_in.get(f"scenarios.<name:{kind}>", set()), common | set(tables[heading]))
for heading in tables:
    m = re.fullmatch(r'\[scenarios\.NAME\] type = "([a-z_]+)"', heading)
    if m:
        check(m.group(1) in schema.scenario_types,
              f"polar-loadd.toml.5 describes an unknown {heading}")

# Schedule types: `type` and the type's own keys (those of steps and windows in their paragraphs).
for kind in schema.schedule_types:
    heading = f'[scenarios.NAME.schedule] type = "{kind}"'
    check(heading in tables, f"polar-loadd.toml.5 has no section {heading}")
    if heading in tables:
        compare(heading, accepted_in["scenarios.<name>.schedule"] |
                accepted_in.get(f"scenarios.<name>.schedule:{kind}", set()), set(tables[heading]))
for heading in tables:
    m = re.fullmatch(r'\[scenarios\.NAME\.schedule\] type = "([a-z_]+)"', heading)
    if m:
        check(m.group(1) in schema.schedule_types,
              f"polar-loadd.toml.5 describes an unknown {heading}")
print(f"polar-loadd.toml.5: {sum(len(v) for v in tables.values())} keys in {len(tables)} tables, "
      f"{len(schema.scenario_types)} scenario types, {len(schema.schedule_types)} schedule types")

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
