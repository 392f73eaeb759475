"""Scores testdata/onnx/<name>.input.csv through a running shim (POST /model/score) or
reads a batch output CSV, and checks every cell against onnxruntime's own outputs
(<name>.expected.csv): float cells must parse to the same float32 (float64 for Float64
columns) bits, other cells be the same text. Standard library only.

    python3 e2e_score.py URL MODEL_JSON INPUT_CSV EXPECTED_CSV      # REST
    python3 e2e_score.py --csv OUTPUT_CSV MODEL_JSON EXPECTED_CSV   # batch output
"""
import csv
import io
import json
import math
import struct
import sys
import urllib.request


def f32(s):
    return struct.unpack("<I", struct.pack("<f", float(s)))[0]


def same(got, want, ty):
    if ty == "Float32":
        g, w = float(got), float(want)
        return (math.isnan(g) and math.isnan(w)) or f32(got) == f32(want)
    if ty == "Float64":
        g, w = float(got), float(want)
        return (math.isnan(g) and math.isnan(w)) or g == w
    return got == want


def read_csv(path):
    with open(path, newline="") as f:
        r = list(csv.reader(f))
    return r[0], r[1:]


def compare(header, rows, manifest, expected):
    types = [c["type"] for c in manifest["output_schema"]]
    want_header, want_rows = read_csv(expected)
    if header != want_header:
        sys.exit(f"output columns {header}, expected {want_header}")
    if len(rows) != len(want_rows):
        sys.exit(f"{len(rows)} rows, expected {len(want_rows)}")
    for i, (g, w) in enumerate(zip(rows, want_rows)):
        for c, (gc, wc, ty) in enumerate(zip(g, w, types)):
            if not same(gc, wc, ty):
                sys.exit(f"row {i} column {header[c]!r}: {gc}, onnxruntime says {wc}")
    return f"{len(rows)} rows x {len(header)} columns equal onnxruntime's (floats bit for bit)"


def main():
    if sys.argv[1] == "--csv":
        out, manifest, expected = sys.argv[2:5]
        with open(manifest) as f:
            m = json.load(f)
        header, rows = read_csv(out)
        print(compare(header, rows, m, expected))
        return
    url, manifest, inputs, expected = sys.argv[1:5]
    with open(manifest) as f:
        m = json.load(f)
    fields, rows = read_csv(inputs)
    body = json.dumps({"fields": fields, "rows": rows}).encode()
    req = urllib.request.Request(url + "/model/score", data=body,
                                 headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        reply = json.load(r)
    print(compare(reply["fields"], reply["score"], m, expected))


if __name__ == "__main__":
    main()
