"""Check the RE2 → Python translation of gitleaks' rules against Go's own regexp engine.

    .venv/bin/python scripts/check-credential-rules.py [--version v8.30.1 | --from DIR] [--examples N]

Run after ``update-credential-rules.py``. For every rule and allowlist regex of gitleaks' config,
strings that the translated pattern matches are generated (hypothesis ``from_regex``, also placed
in context, upper- and lower-cased) and joined with the ordinary-content corpus of the unit
tests; Go (``regexp``, the RE2 syntax gitleaks uses) and Python then report every match and
group span on each, and any difference is printed. Needs ``go`` and the dev dependencies; Go
builds a standard-library-only program, so nothing is downloaded but the gitleaks module.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import random
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import tomllib
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "unit" / "data" / "ordinary"

GO_PROGRAM = """package main

import (
	"encoding/json"
	"os"
	"regexp"
)

type Case struct {
	ID      string   `json:"id"`
	Pattern string   `json:"pattern"`
	Inputs  []string `json:"inputs"`
}

func main() {
	var cases []Case
	if err := json.NewDecoder(os.Stdin).Decode(&cases); err != nil {
		panic(err)
	}
	out := map[string][][][]int{}
	for _, c := range cases {
		re := regexp.MustCompile(c.Pattern)
		for _, input := range c.Inputs {
			found := re.FindAllStringSubmatchIndex(input, -1)
			if found == nil {
				found = [][]int{}
			}
			out[c.ID] = append(out[c.ID], found)
		}
	}
	json.NewEncoder(os.Stdout).Encode(out)
}
"""


def load_generator() -> Any:
    path = ROOT / "scripts" / "update-credential-rules.py"
    spec = importlib.util.spec_from_file_location("update_credential_rules", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def patterns(config: dict[str, Any]) -> list[tuple[str, str]]:
    found = [(rule["id"], rule["regex"]) for rule in config["rules"] if "regex" in rule]
    for rule in config["rules"]:
        for i, allowlist in enumerate(rule.get("allowlists", [])):
            found += [
                (f"{rule['id']} allowlist {i}.{j}", r) for j, r in enumerate(allowlist.get("regexes", []))
            ]
    found += [
        (f"global allowlist {j}", r) for j, r in enumerate(config.get("allowlist", {}).get("regexes", []))
    ]
    return found


def samples(pattern: re.Pattern[str], count: int) -> list[str]:
    collected: list[str] = []
    strategy = st.from_regex(pattern, fullmatch=True, alphabet=st.characters(max_codepoint=127))

    @settings(max_examples=count, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(strategy)
    def collect(text: str) -> None:
        collected.append(text)

    collect()
    return collected


def python_spans(pattern: re.Pattern[str], text: str, groups: bool) -> list[list[int]]:
    """Every match as Go reports it: byte offsets of the match and (if ``groups``) each group."""

    def byte(offset: int) -> int:
        return len(text[:offset].encode("utf-8")) if offset >= 0 else -1

    return [
        [
            byte(m.start(g)) if f == 0 else byte(m.end(g))
            for g in range(pattern.groups + 1 if groups else 1)
            for f in (0, 1)
        ]
        for m in pattern.finditer(text)
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--version", default="latest")
    source.add_argument("--from", dest="directory", type=Path)
    parser.add_argument("--examples", type=int, default=25, help="generated strings per pattern")
    args = parser.parse_args()
    generator = load_generator()
    directory = args.directory or generator.module_dir(args.version)[0]
    with (directory / "config" / "gitleaks.toml").open("rb") as handle:
        config = tomllib.load(handle)

    corpus = [path.read_text(encoding="utf-8") for path in sorted(CORPUS.iterdir())]
    rng = random.Random(0)  # noqa: S311 - varied test inputs, not secrets
    context = ["", " ", "\n", "x", "key=", '"', "'", "token: ", "AbC9", "\t", "=", "-", "_"]
    cases, compiled = [], {}
    for pattern_id, regex in patterns(config):
        try:
            python = generator.translate(regex)
            generator.compiles(python)
        except generator.Untranslatable as error:
            print(f"not translated: {pattern_id}: {error}")
            continue
        compiled[pattern_id] = re.compile(python, re.ASCII)
        inputs = []
        for text in samples(compiled[pattern_id], args.examples):
            inputs += [text, rng.choice(context) + text + rng.choice(context), text.upper(), text.lower()]
        cases.append({"id": pattern_id, "pattern": regex, "inputs": inputs + corpus})

    with tempfile.TemporaryDirectory() as build:
        Path(build, "go.mod").write_text("module rulecheck\n\ngo 1.21\n")
        Path(build, "main.go").write_text(GO_PROGRAM)
        subprocess.run(["go", "build", "-o", "rulecheck", "."], cwd=build, check=True)
        completed = subprocess.run(
            [str(Path(build, "rulecheck"))],
            input=json.dumps(cases),
            capture_output=True,
            text=True,
            check=True,
        )
    go_results = json.loads(completed.stdout)

    checked = differences = 0
    for case in cases:
        pattern = compiled[case["id"]]
        # Named groups are non-capturing in the translation: compare whole matches there.
        groups = not re.search(r"\(\?P?<", case["pattern"])
        for text, go_spans in zip(case["inputs"], go_results.get(case["id"], []), strict=True):
            checked += 1
            expected = [spans if groups else spans[:2] for spans in go_spans]
            if python_spans(pattern, text, groups) != expected:
                differences += 1
                print(f"DIFFERENT {case['id']}: {text[:100]!r}")
    print(f"{len(cases)} patterns, {checked} inputs, {differences} differences from Go's regexp")
    return 1 if differences else 0


if __name__ == "__main__":
    sys.exit(main())
