"""The keys polar-loadd's config parser accepts, read from the binary, for the tests that hold
the man page (tests/package/man_test.py) and docs/configuration.md with the shipped example
(tests/docs/config_keys_test.py) to the parser.

The binary is asked, not its source: probe files given to `polar-loadd --check-config` put an
unknown key `zz_probe` into every table and read the "KEY.zz_probe: unknown key; allowed here:
a, b" errors (all errors come out at once, so one probe file covers many tables). Each key a table
accepts is then offered a table `{ zz_probe = 1 }` and an array of tables `[{ zz_probe = 1 }]`:
the keys that hold sub-tables (billing_address, funnel, a schedule's steps and windows) answer
with their own "allowed here" list. The scenario and schedule types come from the "unknown ...
type" errors, each type's steps from the "has no step" error.

Keys are fully qualified, one string each, in the notation of `polar-loadd --print-config-keys`
(docs/architecture.md): `target.base_url`; `scenarios.<name>.rate` (every scenario type);
`scenarios.<name:checkout>.funnel.update` (one type's own keys, a dot into a sub-table);
`scenarios.<name>.schedule.type` and `scenarios.<name>.schedule:steps.steps[].rate` (a schedule
table of one type, `[]` into each table of an array); `scenarios.<name>.thresholds.<step>.p99`.
"""
import os
import re
import subprocess
import tempfile

PROBE = "zz_probe"
# Every probe file starts with this. Nothing: a missing token or scenario is one more error, and
# the parser reports every error at once.
BASE = ""


class ConfigKeys:
    """What the parser accepts: `keys` (the fully qualified keys), `scenario_types`,
    `schedule_types` and `steps` ({scenario type: [its steps]}), read from BINARY."""

    def __init__(self, binary):
        self.binary = binary
        self.keys = set()
        top = self._allowed(f"{PROBE} = 1\n" + BASE, "")
        if not top:
            raise RuntimeError(f"{binary} --check-config named no top-level tables")
        for table in sorted(top - {"scenarios"}):
            self._table(f"[{table}]\n", table, table)
        self.scenario_types = self._types(
            BASE + f'[scenarios.s]\ntype = "{PROBE}"\nrate = "1/s"\n', "scenario")
        self.schedule_types = self._types(
            BASE + f'[scenarios.s]\ntype = "event_ingestion"\n[scenarios.s.schedule]\n'
                   f'type = "{PROBE}"\n', "schedule")
        self.steps = {}
        per_type = {}
        for kind in self.scenario_types:
            head = f'[scenarios.s]\ntype = "{kind}"\nrate = "1/s"\n'
            per_type[kind] = self._allowed(BASE + head + f"{PROBE} = 1\n", "scenarios.s")
            self.steps[kind] = self._steps(kind)
        # A key every type accepts is a common one (scenarios.<name>.KEY), the rest the type's own.
        common = set.intersection(*per_type.values())
        for kind, allowed in per_type.items():
            head = f'[scenarios.s]\ntype = "{kind}"\nrate = "1/s"\n'

            def owner(key, kind=kind):
                return "scenarios.<name>" if key in common else f"scenarios.<name:{kind}>"
            self._add(allowed, owner)
            self._sub_tables(head, "scenarios.s", owner, allowed)
        for kind in self.schedule_types:
            head = (f'[scenarios.s]\ntype = "event_ingestion"\n[scenarios.s.schedule]\n'
                    f'type = "{kind}"\n')
            allowed = self._allowed(BASE + head + f"{PROBE} = 1\n", "scenarios.s.schedule")

            def owner(key, kind=kind):
                # `type` chooses the keys; the others belong to this type's schedule table.
                return ("scenarios.<name>.schedule" if key == "type"
                        else f"scenarios.<name>.schedule:{kind}")
            self._add(allowed, owner)
            self._sub_tables(head, "scenarios.s.schedule", owner, allowed)
        kind, steps = next((k, s) for k, s in self.steps.items() if s)
        self._table(f'[scenarios.s]\ntype = "{kind}"\nrate = "1/s"\n'
                    f"[scenarios.s.thresholds.{steps[0]}]\n",
                    f"scenarios.s.thresholds.{steps[0]}", "scenarios.<name>.thresholds.<step>")

    def tables(self):
        """{table: {its own keys}}: `scenarios.<name:checkout>` -> {"product_id", "funnel", ...}."""
        out = {}
        for key in self.keys:
            table, name = key.rsplit(".", 1)
            out.setdefault(table, set()).add(name)
        return out

    # The probes.

    def check_config(self, text):
        """--check-config's stderr for a file holding TEXT."""
        with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as f:
            f.write(text)
            path = f.name
        try:
            out = subprocess.run([self.binary, "--check-config", "--config", path],
                                 capture_output=True, text=True, timeout=30,
                                 env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")})
            return out.stderr
        finally:
            os.unlink(path)

    @staticmethod
    def allowed_in(errors, path):
        """The list in "PATH.zz_probe: unknown key; allowed here: a, b", or None."""
        prefix = re.escape(f"{path}." if path else "")
        m = re.search(rf"(?:^|: ){prefix}{PROBE}: unknown key; allowed here: ([^\n]*)", errors,
                      re.M)
        return set(m.group(1).replace(" ", "").split(",")) if m else None

    def _allowed(self, text, path):
        errors = self.check_config(text)
        allowed = self.allowed_in(errors, path)
        if allowed is None:
            raise RuntimeError(f"no 'allowed here' list for {path or 'the top level'} in:\n"
                               f"{errors}")
        return allowed

    def _types(self, text, what):
        errors = self.check_config(text)
        m = re.search(rf'unknown {what} type "{PROBE}"; use ([^\n]*)', errors)
        if not m:
            raise RuntimeError(f"no list of {what} types in:\n{errors}")
        return sorted(set(re.findall(r"[a-z_]+", m.group(1))) - {"or", "and"})

    def _steps(self, kind):
        errors = self.check_config(BASE + f'[scenarios.s]\ntype = "{kind}"\nrate = "1/s"\n'
                                   f"[scenarios.s.thresholds.{PROBE}]\n")
        m = re.search(rf'has no step "{PROBE}"; its steps: ([^\n]*)', errors)
        if not m:
            raise RuntimeError(f"no list of {kind}'s steps in:\n{errors}")
        return [s.strip() for s in m.group(1).split(",")]

    def _table(self, head, path, name):
        """The keys of the table HEAD opens (PATH in messages), added as NAME.KEY, and the keys of
        its sub-tables."""
        allowed = self._allowed(BASE + head + f"{PROBE} = 1\n", path)
        self._add(allowed, lambda key: name)
        self._sub_tables(head, path, lambda key: name, allowed)

    def _add(self, keys, owner):
        self.keys.update(f"{owner(key)}.{key}" for key in keys)

    def _sub_tables(self, head, path, owner, keys):
        """Offers each of KEYS (not those HEAD sets) a table, then an array of tables: the keys
        that take one answer with their own "allowed here" list, added as OWNER(KEY).KEY.SUB or
        OWNER(KEY).KEY[].SUB. Two probe files for all KEYS."""
        keys = sorted(set(keys) - set(re.findall(r"^([a-z_]+) = ", head, re.M)))
        for value, suffix in ((f"{{ {PROBE} = 1 }}", ""), (f"[{{ {PROBE} = 1 }}]", "[]")):
            errors = self.check_config(BASE + head + "".join(f"{k} = {value}\n" for k in keys))
            for key in keys:
                inner = self.allowed_in(errors, f"{path}.{key}{'[0]' if suffix else ''}")
                for sub in inner or ():
                    self.keys.add(f"{owner(key)}.{key}{suffix}.{sub}")
