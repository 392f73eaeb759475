#!/usr/bin/env python3
"""The dai-mojo-runtime image scoring a real Driverless AI pipeline on H2O's C++ runtime,
against the same runtime called directly.

    e2e_dai_score.py reference ROWS_JSON PIPELINE        # in the image: /opt/venv/bin/python
    e2e_dai_score.py compare URL ROWS_JSON REFERENCE_JSON

ROWS_JSON is a ScoreRequest ({"fields", "rows"} of string cells; "" is missing).
`reference` loads PIPELINE with daimojo, builds the frame from the rows by the pipeline's
feature types and prints {"fields", "score"} as JSON (float32 cells as numpy prints
them). `compare` POSTs the rows to URL/model/score and checks that the answer has the same
fields and, cell for cell, the same float32 values. Exit status 0 when equal.
"""

import json
import struct
import sys
import urllib.request


def reference(rows_path, pipeline):
    import daimojo
    import datatable as dt
    import numpy as np

    with open(rows_path) as f:
        req = json.load(f)
    m = daimojo.model(pipeline)
    pos = {n: i for i, n in enumerate(req["fields"])}
    cols = {}
    for name, kind in zip(m.feature_names, m.feature_types):
        vals = []
        for r in req["rows"]:
            t = r[pos[name]]
            if t == "" or t in m.missing_values:
                vals.append(None)
            elif kind.startswith("float"):
                vals.append(float(t))
            elif kind.startswith("int"):
                vals.append(int(float(t)))
            else:
                vals.append(t)
        cols[name] = vals
    out = m.predict(dt.Frame(cols))
    data = out.to_list()
    score = [[("" if data[c][r] is None else str(np.float32(data[c][r]))) for c in range(out.ncols)]
             for r in range(out.nrows)]
    print(json.dumps({"fields": list(out.names), "score": score}))


def f32(s):
    return struct.unpack("<I", struct.pack("<f", float(s)))[0]


def compare(url, rows_path, ref_path):
    with open(rows_path) as f:
        body = f.read().encode()
    with open(ref_path) as f:
        want = json.load(f)
    req = urllib.request.Request(url.rstrip("/") + "/model/score", data=body,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        got = json.load(r)
    if got["fields"] != want["fields"]:
        sys.exit(f"fields {got['fields']}, daimojo says {want['fields']}")
    if len(got["score"]) != len(want["score"]):
        sys.exit(f"{len(got['score'])} rows, daimojo gives {len(want['score'])}")
    for i, (g, w) in enumerate(zip(got["score"], want["score"])):
        for c, (gc, wc) in enumerate(zip(g, w)):
            if gc != wc and (gc == "" or wc == "" or f32(gc) != f32(wc)):
                sys.exit(f"row {i} column {want['fields'][c]!r}: {gc}, daimojo says {wc}")
    print(f"{len(got['score'])} rows x {len(want['fields'])} outputs equal daimojo's own predict (float32)")


if __name__ == "__main__":
    if sys.argv[1] == "reference":
        reference(*sys.argv[2:4])
    elif sys.argv[1] == "compare":
        compare(*sys.argv[2:5])
    else:
        sys.exit(__doc__)
