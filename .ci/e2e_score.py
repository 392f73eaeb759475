#!/usr/bin/env python3
"""Scores a reference input through a running runtime-shim and compares the answer with
H2O's reference predictions (testdata/h2o3/<name>.predictions.csv, written by h2o-genmodel).

Usage: e2e_score.py BASE_URL INPUT_CSV PREDICTIONS_CSV

The request is the MLOps ScoreRequest for every input row (empty cells are missing
values); the response must have the predictions' header as `fields` and one row per input
row: labels identical, numbers within 1e-12 relative (the tolerance of the project's own
scorer tests). Exit status 0 when everything matches, 1 otherwise, with the first
differences printed.
"""

import csv
import json
import math
import sys
import urllib.error
import urllib.request

TOLERANCE = 1e-12


def read_csv(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


def same(got, want):
    if got == want:
        return True
    try:
        g, w = float(got), float(want)
    except (TypeError, ValueError):
        return False
    if math.isnan(g) and math.isnan(w):
        return True
    return abs(g - w) <= TOLERANCE * abs(w)


def main():
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    base, input_csv, predictions_csv = sys.argv[1:]
    fields, rows = read_csv(input_csv)
    want_fields, want_rows = read_csv(predictions_csv)

    body = json.dumps({"fields": fields, "rows": rows}).encode()
    req = urllib.request.Request(
        base.rstrip("/") + "/model/score",
        data=body,
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            answer = json.load(resp)
    except urllib.error.HTTPError as e:
        print(f"POST /model/score: HTTP {e.code}: {e.read().decode(errors='replace')}", file=sys.stderr)
        return 1

    problems = []
    if answer.get("fields") != want_fields:
        problems.append(f"fields {answer.get('fields')} != reference {want_fields}")
    score = answer.get("score") or []
    if len(score) != len(want_rows):
        problems.append(f"{len(score)} score rows for {len(want_rows)} reference rows")
    for i, (got, want) in enumerate(zip(score, want_rows)):
        if len(got) != len(want) or not all(same(g, w) for g, w in zip(got, want)):
            problems.append(f"row {i}: got {got}, reference {want}")
    if problems:
        for p in problems[:10]:
            print("mismatch: " + p, file=sys.stderr)
        return 1
    print(f"{len(score)} rows x {len(want_fields)} outputs match H2O's reference predictions")
    return 0


if __name__ == "__main__":
    sys.exit(main())
