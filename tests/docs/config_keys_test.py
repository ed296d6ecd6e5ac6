#!/usr/bin/python3
"""docs/configuration.md and the shipped example packaging/polar-loadd.toml name exactly the keys
the config parser accepts (ctest label `docs`).

    config_keys_test.py SOURCE_DIR POLAR_LOADD_BINARY

The accepted keys come from the binary (tests/support/config_keys.py), per table, per scenario
type and per schedule type, sub-tables included. Then:

- every accepted key has a row in one of docs/configuration.md's reference tables, and every row
  there is accepted where its table says. A reference table is one whose first column is `key`,
  under a heading naming its TOML table in code: `[target]`, `[scenarios.NAME]` (keys of every
  scenario type), `[scenarios.NAME]` with type checkout (that type's own keys),
  `[scenarios.NAME.thresholds.STEP]`, `[scenarios.NAME.schedule]` (its `used by` column names the
  schedule types a key belongs to, `all` for `type`). A sub-table's keys have rows of their own:
  `funnel.update`, `steps[].rate` (each table of an array).
- the `type` rows' accepted column names exactly the scenario types and schedule types the parser
  knows;
- every accepted key appears in packaging/polar-loadd.toml, set or commented out (`# key = value`
  under its table's header, which may be commented out too), with a scenario of every type; and
  every key set or commented out there is accepted (a commented example goes stale too).
"""
import os
import re
import sys
import tomllib

sys.dont_write_bytecode = True  # nothing written into the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import markdown  # noqa: E402  (tests/support/markdown.py)
from config_keys import ConfigKeys  # noqa: E402  (tests/support/config_keys.py)

DOC = "docs/configuration.md"
EXAMPLE = "packaging/polar-loadd.toml"

failures = []


def fail(message):
    failures.append(message)


def table_path(heading):
    """`[scenarios.NAME]` with type checkout -> scenarios.<name:checkout>; None when the heading
    names no config table."""
    names = [w for w in markdown.code_words(heading) if w.startswith("[") and w.endswith("]")]
    if len(names) != 1:
        return None
    path = names[0][1:-1].replace("NAME", "<name>").replace("STEP", "<step>")
    m = re.search(r"with type ([a-z_]+)", heading)
    if m:
        path = path.replace("<name>", f"<name:{m.group(1)}>", 1)
    return path


def documented(text):
    """{fully qualified key: line} from the reference tables; `type` rows' accepted cells."""
    keys, type_rows = {}, {}
    for table in markdown.tables(text):
        if not table.header or table.header[0] != "key":
            continue
        path = table_path(table.heading)
        if path is None:
            fail(f"{DOC}:{table.line}: a table of keys under '{table.heading}', which names no "
                 "config table in code (`[target]`)")
            continue
        used_by, accepted = table.column("used by"), table.column("accepted")
        for row, line in zip(table.rows, table.lines):
            words = markdown.code_words(row[0])
            if len(words) != 1:
                fail(f"{DOC}:{line}: the key cell should be one key in code: {row[0]!r}")
                continue
            key = words[0]
            owners = [path]
            if used_by is not None and row[used_by].strip() != "all":
                owners = [f"{path}:{t}" for t in markdown.code_words(row[used_by])]
                if not owners:
                    fail(f"{DOC}:{line}: {key}: 'used by' names no type")
            for owner in owners:
                if f"{owner}.{key}" in keys:
                    fail(f"{DOC}:{line}: {owner}.{key} is documented twice")
                keys[f"{owner}.{key}"] = line
            if key == "type" and accepted is not None:
                type_rows[path] = (line, {w.strip('"') for w in
                                          markdown.code_words(row[accepted])})
    return keys, type_rows


def example_lines(text):
    """(line, commented, body) of each line, the body without its comment marker."""
    for number, line in enumerate(text.split("\n"), 1):
        stripped = line.strip()
        if stripped.startswith("#"):
            yield number, True, re.sub(r"^#\s?", "", stripped).strip()
        else:
            yield number, False, stripped


def example_blocks(text):
    """[(table path as a list, line, {key: (value, line)})] of the example, commented-out tables
    and keys included. A commented line counts as a key only if its value parses as TOML (joined
    with up to five following comment lines, for a wrapped array): prose is not a key."""
    lines = list(example_lines(text))
    blocks = [([], 0, {})]
    i = 0
    while i < len(lines):
        number, commented, body = lines[i]
        i += 1
        header = re.fullmatch(r"\[([A-Za-z0-9_.-]+)\]", body)
        if header:
            blocks.append((header.group(1).split("."), number, {}))
            continue
        m = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.+)", body)
        if not m:
            continue
        value = None
        for extra in range(6):
            joined = " ".join([m.group(2)] + [b for _, _, b in lines[i:i + extra]])
            try:
                value = tomllib.loads(f"v = {joined}")["v"]
                i += extra
                break
            except tomllib.TOMLDecodeError:
                value = None
        if value is None:
            if not commented:
                fail(f"{EXAMPLE}:{number}: not valid TOML: {body}")
            continue
        blocks[-1][2][m.group(1)] = (value, number)
    return blocks


def nested(prefix, value):
    """A value's own keys: a table's as PREFIX.KEY, an array of tables' as PREFIX[].KEY."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield f"{prefix}.{k}"
            yield from nested(f"{prefix}.{k}", v)
    elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        for item in value:
            for k, v in item.items():
                yield f"{prefix}[].{k}"
                yield from nested(f"{prefix}[].{k}", v)


def example_keys(text, accepted):
    """{fully qualified key: line} of every key the example sets or shows commented out, and
    {scenario type: line} of its scenarios."""
    blocks = example_blocks(text)
    scenario_type = {}
    for path, _, keys in blocks:
        if len(path) == 2 and path[0] == "scenarios" and "type" in keys:
            scenario_type[path[1]] = keys["type"]
    found, types = {}, {}

    def add(key, line):
        found.setdefault(key, line)

    for path, line, keys in blocks:
        if not path:
            for key, (_, at) in keys.items():
                fail(f"{EXAMPLE}:{at}: {key} before any table")
            continue
        if path[0] != "scenarios":
            owner = ".".join(path)
        elif len(path) == 2:
            kind = scenario_type.get(path[1], (None, line))[0]
            types.setdefault(kind, line)
            owner = None
        elif len(path) == 3 and path[2] == "schedule":
            add("scenarios.<name>.schedule", line)
            owner = f"scenarios.<name>.schedule:{keys.get('type', ('?', 0))[0]}"
        elif len(path) == 4 and path[2] == "thresholds":
            add("scenarios.<name>.thresholds", line)
            owner = "scenarios.<name>.thresholds.<step>"
        else:
            fail(f"{EXAMPLE}:{line}: a table [{'.'.join(path)}] the parser has no place for")
            continue
        for key, (value, at) in keys.items():
            if owner is None:
                # A scenario's key: common to every type, or its type's own.
                o = "scenarios.<name>" if f"scenarios.<name>.{key}" in accepted \
                    else f"scenarios.<name:{kind}>"
            elif owner.startswith("scenarios.<name>.schedule:") and key == "type":
                o = "scenarios.<name>.schedule"
            else:
                o = owner
            add(f"{o}.{key}", at)
            for sub in nested(f"{o}.{key}", value):
                add(sub, at)
    return found, types


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 64
    source, binary = sys.argv[1], sys.argv[2]
    schema = ConfigKeys(binary)
    accepted = schema.keys
    with open(os.path.join(source, DOC), encoding="utf-8") as f:
        docs, type_rows = documented(f.read())
    with open(os.path.join(source, EXAMPLE), encoding="utf-8") as f:
        example, example_types = example_keys(f.read(), accepted)

    for key in sorted(accepted - docs.keys()):
        fail(f"{DOC}: {key} is accepted but has no row in the reference tables")
    for key in sorted(docs.keys() - accepted):
        fail(f"{DOC}:{docs[key]}: {key} is documented but not accepted")
    for path, types in (("scenarios.<name>", schema.scenario_types),
                        ("scenarios.<name>.schedule", schema.schedule_types)):
        line, named = type_rows.get(path, (0, None))
        if named is None:
            fail(f"{DOC}: no `type` row for {path}")
        elif named != set(types):
            fail(f"{DOC}:{line}: {path}.type lists {sorted(named)}; the parser knows "
                 f"{sorted(types)}")
    for key in sorted(accepted - example.keys()):
        fail(f"{EXAMPLE}: {key} is accepted but neither set nor shown commented out")
    for key in sorted(example.keys() - accepted):
        fail(f"{EXAMPLE}:{example[key]}: {key} is not accepted")
    for kind in schema.scenario_types:
        if kind not in example_types:
            fail(f"{EXAMPLE}: no scenario of type {kind}")

    for message in failures:
        print("FAIL:", message, file=sys.stderr)
    if failures:
        return 1
    print(f"config keys: {len(accepted)} accepted ({len(schema.scenario_types)} scenario types, "
          f"{len(schema.schedule_types)} schedule types); {len(docs)} documented in {DOC}, "
          f"{len(example)} in {EXAMPLE}, the same")
    return 0


if __name__ == "__main__":
    sys.exit(main())
