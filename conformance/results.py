#!/usr/bin/env python3
"""Builds conformance/RESULTS.md from the JSON reports of several adapters.

usage: results.py OUT.md NAME=REPORT.json[=VERSION] ...

One row per requirement, one column per implementation: "pass" when every
fixture listing the requirement passed, otherwise the number of fixtures
that failed or were skipped, with the first reason below the table.
"""
import json
import sys

LEVELS = ["MUST", "SHOULD", "MAY"]


def load(arg):
    name, path, *version = arg.split("=", 2)
    with open(path) as f:
        return name, (version[0] if version else ""), json.load(f)


def cell(results):
    fails = [r for r in results if r["status"] == "fail"]
    skips = [r for r in results if r["status"] == "skip"]
    if fails:
        return f"**fail** {len(fails)}/{len(results)}", fails
    if skips:
        return f"skip {len(skips)}/{len(results)}", skips
    return "pass", []


def reason(case, r):
    if r.get("differences"):
        d = r["differences"][0]
        text = f"`{d['path']}`: {d['check']} expected {d['expected']}, found {d['found']}"
    else:
        text = r.get("reason") or "no reason given"
    text = " ".join(text.split())
    return f"{case}: {text[:160]}"


def main():
    out, reports = sys.argv[1], [load(a) for a in sys.argv[2:]]
    # requirement -> level, and per implementation: requirement -> [(case, result)]
    levels, per = {}, []
    for _, _, report in reports:
        table = {}
        for fx in report["fixtures"]:
            for r in fx["results"]:
                levels[r["requirement"]] = r["level"]
                table.setdefault(r["requirement"], []).append((fx["case"], r))
        per.append(table)
    order = sorted(levels, key=lambda k: (LEVELS.index(levels[k]), k))
    lines = [
        "# Conformance results",
        "",
        "Every fixture of `conformance/fixtures/` unpacked by each implementation through its adapter in",
        "`conformance/adapters/`, as an unprivileged user (65534), by `single-id-conformance run`.",
        "A cell says `pass` when every fixture that tests the requirement passed, otherwise how many",
        "of those fixtures failed (or were skipped); the first reason for each follows the table.",
        "Regenerate with `bash conformance/results.sh` (it installs nothing; `.ci/run` does).",
        "",
        "| implementation | version | MUST | SHOULD | MAY | conformant |",
        "|---|---|---|---|---|---|",
    ]
    for name, version, report in reports:
        s = report["summary"]
        tally = lambda t: f"{t['pass']}/{t['pass'] + t['fail'] + t['skip']}"
        lines.append(
            f"| {name} | {version} | {tally(s['MUST'])} | {tally(s['SHOULD'])} | {tally(s['MAY'])} | "
            f"{'yes' if s['conformant'] else 'no'} |"
        )
    lines += ["", "| requirement | level | " + " | ".join(n for n, _, _ in reports) + " |"]
    lines.append("|---|---|" + "---|" * len(reports))
    notes = []
    for req in order:
        row = [req, levels[req]]
        for (name, _, _), table in zip(reports, per):
            results = table.get(req, [])
            if not results:
                row.append("")
                continue
            text, bad = cell([r for _, r in results])
            row.append(text)
            if bad:
                case = next(c for c, r in results if r is bad[0])
                notes.append(f"- {name}, {req}: {reason(case, bad[0])}")
        lines.append("| " + " | ".join(row) + " |")
    if notes:
        lines += ["", "## First reason per failing cell", ""] + notes
    with open(out, "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
