#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Checks that every PromQL query of the Grafana dashboards and the alert
rules names only metrics (and labels) a swarmq consumer really exports.

    check_queries.py --metrics METRICS.txt [--promtool promtool] FILE...

METRICS.txt is a scrape of a running consumer's /metrics. FILE is a
Grafana dashboard (.json) or a Prometheus rules file (.yml). For each
query it:
  - substitutes Grafana's variables ($__rate_interval, $instance, ...),
  - has promtool parse it (all queries in one generated rules file),
  - extracts the metric names of its selectors (a small PromQL tokenizer:
    functions, aggregations, by/on label lists, ranges, strings and
    numbers are not metric names) and checks each is exported: a family of
    the scrape (histograms only as _bucket, _sum, _count) or a series
    Prometheus adds itself (up, scrape_*, ALERTS),
  - checks the label names of each selector's matchers exist on that
    metric's samples, and that an equality matcher's value occurs (when
    the scrape has samples of the metric), so status="succeeded" against
    status="SUCCEEDED" is caught.
Prints one line per problem and exits 1 if there is any, else prints a
summary and exits 0. DESIGN: no PromQL library is needed at runtime: the
tokenizer only has to find selectors; promtool does the real parse.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

import yaml

# Series Prometheus itself attaches to every target, and alert series.
SYNTHETIC = {
    "up", "scrape_duration_seconds", "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling", "scrape_series_added",
    "ALERTS", "ALERTS_FOR_STATE",
}
# Labels Prometheus adds to every scraped series.
TARGET_LABELS = {"job", "instance", "__name__"}

KEYWORDS = {
    "and", "or", "unless", "bool", "offset", "by", "without", "on",
    "ignoring", "group_left", "group_right", "inf", "nan", "atan2",
}
# Aggregation operators: "sum by (x) (...)" has no "(" right after "sum".
AGGREGATIONS = {
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count",
    "count_values", "bottomk", "topk", "quantile",
}
LABEL_LIST_KEYWORDS = {"by", "without", "on", "ignoring", "group_left",
                       "group_right"}

GRAFANA_VARS = [
    (re.compile(r"\$__rate_interval|\$\{__rate_interval\}"), "1m"),
    (re.compile(r"\$__interval|\$\{__interval\}"), "1m"),
    (re.compile(r"\$__range|\$\{__range\}"), "1h"),
    (re.compile(r"\$__range_s|\$\{__range_s\}"), "3600"),
    # Any other variable ($instance, ${agent}) stands for a regex.
    (re.compile(r"\$\{?[A-Za-z_][A-Za-z0-9_]*\}?"), ".*"),
]

TOKEN = re.compile(r"""
    (?P<str>"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|`[^`]*`)
  | (?P<num>(?:0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
            (?:ms|[smhdwy])*)
  | (?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
  | (?P<op>==|!=|=~|!~|>=|<=|[-+*/%^<>=(){}\[\],@])
  | (?P<ws>\s+)
""", re.X)


class Selector:
    def __init__(self, metric):
        self.metric = metric
        self.matchers = []  # (label, op, value)


def tokenize(expr):
    pos, out = 0, []
    while pos < len(expr):
        m = TOKEN.match(expr, pos)
        if not m:
            raise ValueError(f"cannot tokenize at {expr[pos:pos + 20]!r}")
        pos = m.end()
        kind = m.lastgroup
        if kind != "ws":
            out.append((kind, m.group(kind)))
    return out


def unquote(s):
    if s[0] == "`":
        return s[1:-1]
    return json.loads('"' + s[1:-1].replace('\\\'', "'") + '"') \
        if s[0] == "'" else json.loads(s)


def selectors(expr):
    """The vector selectors of a PromQL expression."""
    toks = tokenize(expr)
    sels, i = [], 0
    while i < len(toks):
        kind, text = toks[i]
        nxt = toks[i + 1] if i + 1 < len(toks) else (None, None)
        if kind == "op" and text == "[":  # range or subquery: skip
            depth = 1
            i += 1
            while i < len(toks) and depth:
                if toks[i] == ("op", "["):
                    depth += 1
                elif toks[i] == ("op", "]"):
                    depth -= 1
                i += 1
            continue
        if kind == "ident" and text in LABEL_LIST_KEYWORDS:
            i += 1
            if i < len(toks) and toks[i] == ("op", "("):
                while i < len(toks) and toks[i] != ("op", ")"):
                    i += 1
                i += 1
            continue
        if kind == "ident" and text == "offset":
            i += 2  # offset DURATION
            continue
        if kind == "ident" and (nxt == ("op", "(") or text in AGGREGATIONS):
            i += 1  # a function or an aggregation
            continue
        if kind == "ident" and text in KEYWORDS:
            i += 1
            continue
        if kind == "ident" or (kind == "op" and text == "{"):
            sel = Selector(text if kind == "ident" else None)
            if kind == "ident":
                i += 1
            if i < len(toks) and toks[i] == ("op", "{"):
                i += 1
                while i < len(toks) and toks[i] != ("op", "}"):
                    if toks[i][0] == "op" and toks[i][1] == ",":
                        i += 1
                        continue
                    label, op, value = toks[i][1], toks[i + 1][1], \
                        unquote(toks[i + 2][1])
                    sel.matchers.append((label, op, value))
                    i += 3
                i += 1
            for label, op, value in sel.matchers:
                if label == "__name__" and op == "=":
                    sel.metric = value
            sels.append(sel)
            continue
        i += 1
    return sels


def parse_scrape(path):
    """Families by exported series name: {name: (family type, [labels])}."""
    types, samples = {}, {}
    line_re = re.compile(r"^([A-Za-z_:][A-Za-z0-9_:]*)(\{(.*)\})?\s")
    label_re = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)="((?:\\.|[^"\\])*)"')
    with open(path) as fp:
        for line in fp:
            if line.startswith("# TYPE "):
                _, _, name, kind = line.split()
                types[name] = kind
                continue
            if line.startswith("#") or not line.strip():
                continue
            m = line_re.match(line)
            if m:
                labels = dict(label_re.findall(m.group(3) or ""))
                samples.setdefault(m.group(1), []).append(labels)
    exported = {}
    for name, kind in types.items():
        if kind in ("histogram", "summary"):
            suffixes = ["_sum", "_count"] + (
                ["_bucket"] if kind == "histogram" else [""])
        else:
            suffixes = [""]
        for suffix in suffixes:
            exported[name + suffix] = samples.get(name + suffix, [])
    return exported


def substitute(expr):
    for pattern, value in GRAFANA_VARS:
        expr = pattern.sub(value, expr)
    return expr


def dashboard_queries(path):
    with open(path) as fp:
        dash = json.load(fp)
    out = []

    def walk(panels):
        for p in panels:
            for t in p.get("targets", []):
                if t.get("expr"):
                    out.append((f"panel {p.get('id')} \"{p.get('title')}\" "
                                f"refId {t.get('refId')}", t["expr"], None))
            walk(p.get("panels", []))
    walk(dash.get("panels", []))
    for var in dash.get("templating", {}).get("list", []):
        query = var.get("query")
        if isinstance(query, dict):
            query = query.get("query")
        if var.get("type") != "query" or not query:
            continue
        m = re.fullmatch(r"\s*label_values\((.*),\s*([A-Za-z_]\w*)\s*\)\s*",
                         query)
        if m:
            out.append((f"variable ${var['name']}", m.group(1), m.group(2)))
        else:
            out.append((f"variable ${var['name']}", query, None))
    return out


def rules_queries(path):
    with open(path) as fp:
        doc = yaml.safe_load(fp)
    out = []
    for group in doc.get("groups", []):
        for rule in group.get("rules", []):
            name = rule.get("alert") or rule.get("record")
            out.append((f"rule {name}", rule["expr"], None))
    return out


def promtool_parse(queries, promtool):
    """Parses every query with promtool; returns {index: error}."""
    errors = {}
    with tempfile.TemporaryDirectory() as tmp:
        for idx, (_, _, expr) in enumerate(queries):
            path = os.path.join(tmp, "q.yml")
            with open(path, "w") as fp:
                yaml.safe_dump({"groups": [{"name": "q", "rules": [
                    {"record": "q", "expr": expr}]}]}, fp)
            r = subprocess.run([promtool, "check", "rules", path],
                               capture_output=True, text=True)
            if r.returncode != 0:
                errors[idx] = (r.stdout + r.stderr).strip().splitlines()[-1]
    return errors


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--metrics", required=True,
                    help="a scrape of a consumer's /metrics")
    ap.add_argument("--promtool", default="promtool")
    ap.add_argument("files", nargs="+")
    args = ap.parse_args()

    exported = parse_scrape(args.metrics)
    queries = []  # (file, where, expr, extra label)
    for path in args.files:
        qs = dashboard_queries(path) if path.endswith(".json") \
            else rules_queries(path)
        for where, expr, label in qs:
            queries.append((path, where, substitute(expr), label))

    problems = []
    parse_errors = promtool_parse([(f, w, e) for f, w, e, _ in queries],
                                  args.promtool)
    names = set()
    for idx, (path, where, expr, extra_label) in enumerate(queries):
        here = f"{os.path.basename(path)}: {where}"
        if idx in parse_errors:
            problems.append(f"{here}: promtool cannot parse {expr!r}: "
                            f"{parse_errors[idx]}")
            continue
        try:
            sels = selectors(expr)
        except (ValueError, IndexError) as e:
            problems.append(f"{here}: cannot read {expr!r}: {e}")
            continue
        if not sels:
            problems.append(f"{here}: no metric selector in {expr!r}")
        for sel in sels:
            if sel.metric is None:
                problems.append(f"{here}: selector without a metric name")
                continue
            names.add(sel.metric)
            if sel.metric in SYNTHETIC:
                continue
            if sel.metric not in exported:
                problems.append(f"{here}: metric {sel.metric} is not "
                                f"exported by /metrics (in {expr!r})")
                continue
            series = exported[sel.metric]
            if not series:
                continue  # declared, no samples in this scrape
            have = set().union(*(s.keys() for s in series)) | TARGET_LABELS
            wanted = [(lbl, op, val) for lbl, op, val in sel.matchers]
            if extra_label:
                wanted.append((extra_label, None, None))
            for label, op, value in wanted:
                if label not in have:
                    problems.append(f"{here}: {sel.metric} has no label "
                                    f"{label!r} (it has {sorted(have)})")
                elif op == "=" and label not in TARGET_LABELS and \
                        value not in {s.get(label) for s in series}:
                    problems.append(
                        f"{here}: no {sel.metric} series has "
                        f"{label}=\"{value}\" (values: "
                        f"{sorted({s.get(label) for s in series if label in s})})")
    for p in problems:
        print(p)
    if problems:
        print(f"{len(problems)} problems in {len(queries)} queries")
        return 1
    print(f"ok: {len(queries)} queries in {len(args.files)} files parse and "
          f"use {len(names)} metric names, all exported")
    return 0


if __name__ == "__main__":
    sys.exit(main())
