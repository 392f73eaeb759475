#!/usr/bin/env python3
"""Scores an MLflow test model's reference request through a running runtime and compares
the answer with MLflow's own predictions (testdata/mlflow/<name>.predictions.json, written
by `mlflow models serve` when the samples were made).

Usage: e2e_mlflow_score.py BASE_URL MODEL_JSON REQUEST_JSON PREDICTIONS_JSON

The request is <name>.request.json (split orient) as the MLOps ScoreRequest of string
cells, with the fields in reverse order (the runtime maps them by name); a tensor model's
request (MLflow's `{"inputs": ...}`, one tensor or a dict of them) becomes rows of the
manifest's positional input columns, in the order metadata.tensor_signature gives, and
its reference (a list of tensor rows, or a dict of tensors) the same way. The answer must
have the manifest's output columns and one row per input row, every cell equal to the
reference: numbers as the same float64 (integers as the same text), labels as the same
text. Exit status 0 when everything matches, 1 otherwise. Standard library only.
"""

import json
import sys
import urllib.error
import urllib.request


def text(v):
    return v if isinstance(v, str) else json.dumps(v)


def flat(v):
    """A tensor row's cells in order (nested lists flattened)."""
    if isinstance(v, list):
        return [x for item in v for x in flat(item)]
    return [v]


def tensor_rows(value, order):
    """Rows of cells from one tensor (a list of rows) or a dict of tensors, taken in the
    order of metadata.tensor_signature's entries."""
    if isinstance(value, list):
        return [flat(r) for r in value]
    names = [t["tensor"] for t in order]
    n = len(value[names[0]])
    return [[x for name in names for x in flat(value[name][r])] for r in range(n)]


def main():
    base, manifest_path, request_path, predictions_path = sys.argv[1:5]
    with open(manifest_path) as f:
        manifest = json.load(f)
    outputs = [c["name"] for c in manifest["output_schema"]]
    tensors = manifest.get("metadata", {}).get("tensor_signature", {})
    with open(request_path) as f:
        split = json.load(f)
    with open(predictions_path) as f:
        predictions = json.load(f)
    if "inputs" in split:
        fields = [c["name"] for c in manifest["input_schema"]]
        rows = [[text(v) for v in r] for r in tensor_rows(split["inputs"], tensors.get("inputs", []))]
    else:
        fields = list(reversed(split["columns"]))
        rows = [[text(v) for v in reversed(r)] for r in split["data"]]
    if isinstance(predictions, dict) and tensors.get("outputs"):
        predictions = tensor_rows(predictions, tensors["outputs"])
    elif tensors.get("outputs") and predictions and isinstance(predictions[0], list):
        predictions = [flat(p) for p in predictions]
    body = json.dumps({"fields": fields, "rows": rows}).encode()
    req = urllib.request.Request(base.rstrip("/") + "/model/score", data=body,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            answer = json.load(r)
    except urllib.error.HTTPError as e:
        sys.exit(f"POST /model/score: HTTP {e.code}: {e.read().decode(errors='replace')}")

    want = []
    for p in predictions:
        if isinstance(p, list):
            want.append(p)
        elif isinstance(p, dict) and len(p) == 1 and len(outputs) == 1:
            want.append([next(iter(p.values()))])
        elif isinstance(p, dict):
            want.append([p[o] for o in outputs])
        else:
            want.append([p])
    if answer.get("fields") != outputs:
        sys.exit(f"fields {answer.get('fields')}, the manifest's outputs are {outputs}")
    got = answer.get("score") or []
    if len(got) != len(want):
        sys.exit(f"{len(got)} rows for {len(want)} reference rows")
    for i, (g, w) in enumerate(zip(got, want)):
        if len(g) != len(w):
            sys.exit(f"row {i}: {len(g)} cells, reference {len(w)}")
        for c, (gc, wc) in enumerate(zip(g, w)):
            if isinstance(wc, bool) or isinstance(wc, str):
                ok = gc == text(wc) if not isinstance(wc, bool) else gc.lower() == str(wc).lower()
            elif isinstance(wc, int):
                ok = gc == str(wc)
            elif isinstance(wc, float):
                try:
                    ok = float(gc) == wc
                except ValueError:
                    ok = False
            else:
                ok = False
            if not ok:
                sys.exit(f"row {i} column {outputs[c]!r}: {gc!r}, MLflow says {wc!r}")
    print(f"{len(got)} rows x {len(outputs)} outputs equal MLflow's own predictions")


if __name__ == "__main__":
    main()
