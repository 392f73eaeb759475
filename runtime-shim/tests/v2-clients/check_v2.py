"""The Open Inference Protocol v2 clients against running shims: tritonclient's HTTP client
(tritonclient.http) and the KServe SDK's REST client (kserve.InferenceRESTClient with
InferRequest).

Run by runtime-shim/tests/cli/v2.rs with the venv of .ci/setup-v2-clients-venv.sh:

    check_v2.py --case URL NAME CSV [--case ...] [--bearer CREDENTIAL] [--refused]

For each case (a shim at URL serving the model NAME, rows in CSV: a header of input
columns, then text cells as the MLOps API takes them, "" missing):

- health and metadata as the spec says, with both clients: server live and ready, model
  ready (also by version), another model not ready, server metadata (binary_tensor_data
  among the extensions), model metadata (name, versions, inputs and outputs with the
  datatypes of the MLOps columns of /model/schema, by version too);
- the rows scored through POST /model/score (the MLOps API) and through /v2/.../infer by:
  tritonclient with binary inputs and outputs (its default; NaN for a missing number),
  tritonclient in JSON (rows without missing numbers), a 2-D BYTES tensor of all columns,
  requested outputs (a subset, in another order, one binary and one JSON), the version
  path; KServe's client with JSON inputs (null for missing) and outputs, and with binary
  inputs and outputs. Every output equals the MLOps answer: labels as text, FP64 cells
  parsed as float64 and FP32 cells as float32, bit for bit;
- with --bearer, every call sends `Authorization: Bearer CREDENTIAL`; with --refused, the
  model routes without it are refused with 401 by both clients while the health routes
  still answer.

Prints one line per check and exits 1 on the first failure; "v2 client checks passed" at
the end.
"""

import argparse
import asyncio
import csv
import json
import sys
import urllib.request

import httpx
import numpy as np
import tritonclient.http as th
from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig
from kserve.protocol.infer_type import RequestedOutput
from tritonclient.utils import InferenceServerException

DATATYPES = {"Bool": "BOOL", "Int32": "INT32", "Int64": "INT64", "Float32": "FP32",
             "Float64": "FP64", "Str": "BYTES", "Time64": "BYTES"}


def fail(msg):
    print(f"FAILED: {msg}", flush=True)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def http_json(url, body=None, headers=None):
    req = urllib.request.Request(url, data=None if body is None else json.dumps(body).encode(),
                                 headers={"content-type": "application/json", **(headers or {})})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.load(r)


def read_csv(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


def number(c):
    """A numeric text cell as a float, or None when missing ("" or text like "NA" that
    the backend reads as missing)."""
    try:
        return float(c)
    except ValueError:
        return None


def column(cells, dt, missing_as):
    """The text cells of one column as a numpy array of datatype dt (missing: `missing_as`
    for numbers; "" for BYTES, which the shim reads as missing like the MLOps API)."""
    if dt == "BYTES":
        return np.array([c.encode() for c in cells], dtype=np.object_)
    if dt in ("FP32", "FP64"):
        t = np.float32 if dt == "FP32" else np.float64
        return np.array([t(c) if number(c) is not None else missing_as for c in cells], dtype=t)
    if dt == "BOOL":
        return np.array([c.lower() == "true" for c in cells], dtype=np.bool_)
    return np.array([int(c) for c in cells], dtype=np.int32 if dt == "INT32" else np.int64)


def json_column(cells, dt):
    """The cells as a JSON list for a KServe input: None (null) for missing."""
    out = []
    for c in cells:
        if dt == "BYTES":
            out.append(c)
        elif c == "" or (dt in ("FP32", "FP64") and number(c) is None):
            out.append(None)
        elif dt in ("FP32", "FP64"):
            out.append(float(c))
        elif dt == "BOOL":
            out.append(c.lower() == "true")
        else:
            out.append(int(c))
    return out


def same(got, want_text, dt, where):
    """One output element against the MLOps API's text cell."""
    if dt == "BYTES":
        g = got.decode() if isinstance(got, bytes) else str(got)
        check(g == want_text, f"{where}: {g!r} != MLOps {want_text!r}")
        return
    t = {"FP32": np.float32, "FP64": np.float64}.get(dt)
    if t is None:
        check(str(got).lower() == want_text.lower(), f"{where}: {got!r} != MLOps {want_text!r}")
        return
    w = t(want_text) if want_text != "" else t("nan")
    g = t(got)
    check((np.isnan(w) and np.isnan(g)) or g.tobytes() == w.tobytes(),
          f"{where}: {g!r} != MLOps {want_text!r}")


def compare(outputs, mlops, out_types, how, only=None):
    """outputs: name -> numpy array; mlops: (fields, rows) of /model/score."""
    fields, rows = mlops
    names = only or fields
    check(sorted(outputs) == sorted(names), f"{how}: outputs {sorted(outputs)} != {sorted(names)}")
    for name in names:
        arr = outputs[name].reshape(-1)
        check(len(arr) == len(rows), f"{how}: {name} has {len(arr)} rows, MLOps {len(rows)}")
        j = fields.index(name)
        for r, row in enumerate(rows):
            same(arr[r], row[j], out_types[name], f"{how} row {r} {name}")
    print(f"ok: {how}: {len(names)} outputs x {len(rows)} rows equal the MLOps API's")


class Case:
    def __init__(self, url, name, path, headers):
        self.url, self.name, self.headers = url, name, headers
        # A fresh dict per call: tritonclient adds its own headers to the one it is given.
        self.h = lambda: dict(headers)
        self.fields, self.rows = read_csv(path)
        self.host = url.split("://", 1)[1]
        schema = http_json(f"{url}/model/schema", headers=headers)["schema"]
        self.in_types = {f["name"]: DATATYPES[f["dataType"]] for f in schema["inputFields"]}
        self.out_types = {f["name"]: DATATYPES[f["dataType"]] for f in schema["outputFields"]}
        self.inputs = [f["name"] for f in schema["inputFields"]]
        self.outputs = [f["name"] for f in schema["outputFields"]]
        check(set(self.inputs) <= set(self.fields), f"{path} lacks inputs {self.inputs}")
        self.cells = {c: [row[self.fields.index(c)] for row in self.rows] for c in self.inputs}
        r = http_json(f"{url}/model/score", {"fields": self.fields, "rows": self.rows}, headers)
        self.mlops = (r["fields"], r["score"])
        check(r["fields"] == self.outputs, f"MLOps fields {r['fields']} != schema {self.outputs}")


def triton_checks(c):
    t = th.InferenceServerClient(url=c.host, connection_timeout=60, network_timeout=60)
    check(t.is_server_live(headers=c.h()), "tritonclient: server not live")
    check(t.is_server_ready(headers=c.h()), "tritonclient: server not ready")
    check(t.is_model_ready(c.name, headers=c.h()), "tritonclient: model not ready")
    check(t.is_model_ready(c.name, "1", headers=c.h()), "tritonclient: model version 1 not ready")
    check(not t.is_model_ready(c.name + "-other", headers=c.h()), "tritonclient: another model ready")
    check(not t.is_model_ready(c.name, "2", headers=c.h()), "tritonclient: version 2 ready")
    meta = t.get_server_metadata(headers=c.h())
    check("binary_tensor_data" in meta["extensions"], f"server metadata {meta}")
    for version in ("", "1"):
        m = t.get_model_metadata(c.name, version, headers=c.h())
        check(m["name"] == c.name and m["versions"] == ["1"], f"model metadata {m}")
        check([(i["name"], i["datatype"], i["shape"]) for i in m["inputs"]]
              == [(n, c.in_types[n], [-1]) for n in c.inputs], f"metadata inputs {m['inputs']}")
        check([(o["name"], o["datatype"]) for o in m["outputs"]]
              == [(n, c.out_types[n]) for n in c.outputs], f"metadata outputs {m['outputs']}")
    try:
        t.get_model_metadata(c.name + "-other", headers=c.h())
        fail("metadata of another model answered")
    except InferenceServerException as e:
        check(e.status() == "404", f"another model's metadata: {e.status()} {e}")
    print(f"ok: tritonclient health and metadata of {c.name}")

    n = len(c.rows)

    def inputs(binary, rows=None):
        out = []
        for col in c.inputs:
            cells = c.cells[col] if rows is None else [c.cells[col][r] for r in rows]
            i = th.InferInput(col, [len(cells)], c.in_types[col])
            i.set_data_from_numpy(column(cells, c.in_types[col], np.nan), binary_data=binary)
            out.append(i)
        return out

    res = t.infer(c.name, inputs(True), request_id="triton-binary", headers=c.h())
    resp = res.get_response()
    check(resp.get("id") == "triton-binary" and resp["model_name"] == c.name, f"response {resp}")
    check(all("binary_data_size" in o.get("parameters", {}) for o in resp["outputs"]),
          f"outputs not binary: {resp['outputs']}")
    compare({o: res.as_numpy(o) for o in c.outputs}, c.mlops, c.out_types,
            f"tritonclient binary ({c.name})")

    # JSON both ways (JSON has no NaN: the rows without a missing number).
    full = [r for r in range(n) if not any(
        number(c.cells[col][r]) is None for col in c.inputs if c.in_types[col] != "BYTES")]
    check(full, "no row without a missing number")
    outs = [th.InferRequestedOutput(o, binary_data=False) for o in c.outputs]
    res = t.infer(c.name, inputs(False, full), outputs=outs, headers=c.h(), model_version="1")
    check(all("data" in o for o in res.get_response()["outputs"]), "JSON outputs expected")
    compare({o: res.as_numpy(o) for o in c.outputs},
            (c.mlops[0], [c.mlops[1][r] for r in full]), c.out_types,
            f"tritonclient JSON, version path ({c.name})")

    # One 2-D BYTES tensor of every column in schema order: the MLOps text cells.
    grid = th.InferInput("rows", [n, len(c.inputs)], "BYTES")
    grid.set_data_from_numpy(np.array([[row[c.fields.index(col)].encode() for col in c.inputs]
                                       for row in c.rows], dtype=np.object_))
    res = t.infer(c.name, [grid], headers=c.h())
    compare({o: res.as_numpy(o) for o in c.outputs}, c.mlops, c.out_types,
            f"tritonclient 2-D BYTES ({c.name})")

    # Every input of one datatype: one 2-D tensor of it (an ONNX model's own [-1, k] input).
    types = {c.in_types[col] for col in c.inputs}
    if len(types) == 1 and types != {"BYTES"}:
        dt = types.pop()
        grid = th.InferInput("input", [n, len(c.inputs)], dt)
        grid.set_data_from_numpy(np.stack(
            [column(c.cells[col], dt, np.nan) for col in c.inputs], axis=1))
        res = t.infer(c.name, [grid], headers=c.h())
        compare({o: res.as_numpy(o) for o in c.outputs}, c.mlops, c.out_types,
                f"tritonclient 2-D {dt} ({c.name})")

    # Requested outputs: the last as JSON, the first as binary, in that order.
    want = [c.outputs[-1], c.outputs[0]] if len(c.outputs) > 1 else c.outputs
    outs = [th.InferRequestedOutput(o, binary_data=(k == 1)) for k, o in enumerate(want)]
    res = t.infer(c.name, inputs(True), outputs=outs, headers=c.h())
    got = res.get_response()["outputs"]
    check([o["name"] for o in got] == want, f"requested {want}, got {[o['name'] for o in got]}")
    check("data" in got[0] and (len(got) < 2 or "binary_data_size" in got[1]["parameters"]),
          f"binary_data per output not honoured: {got}")
    compare({o: res.as_numpy(o) for o in want}, c.mlops, c.out_types,
            f"tritonclient requested outputs ({c.name})", only=want)
    t.close()


async def kserve_checks(c):
    k = InferenceRESTClient(RESTConfig(protocol="v2", retries=1, timeout=60))
    check(await k.is_server_live(c.url, headers=c.h()), "kserve: not live")
    check(await k.is_server_ready(c.url, headers=c.h()), "kserve: not ready")
    check(await k.is_model_ready(c.url, c.name, headers=c.h()), "kserve: model not ready")
    check(not await k.is_model_ready(c.url, c.name + "-other", headers=c.h()), "kserve: other ready")
    n = len(c.rows)

    def request(binary, rid, **kw):
        inputs = []
        for col in c.inputs:
            dt = c.in_types[col]
            if binary:
                i = InferInput(col, [n], dt)
                i.set_data_from_numpy(column(c.cells[col], dt, np.nan), binary_data=True)
            else:
                i = InferInput(col, [n], dt, data=json_column(c.cells[col], dt))
            inputs.append(i)
        return InferRequest(model_name=c.name, infer_inputs=inputs, request_id=rid, **kw)

    res = await k.infer(c.url, request(False, "kserve-json"), model_name=c.name, headers=c.h())
    check(res.id == "kserve-json" and res.model_name == c.name, f"kserve response {res}")
    compare({o.name: o.as_numpy() for o in res.outputs}, c.mlops, c.out_types,
            f"kserve JSON ({c.name})")

    req = request(True, "kserve-binary", parameters={"binary_data_output": True})
    res = await k.infer(c.url, req, model_name=c.name, headers=c.h())
    compare({o.name: o.as_numpy() for o in res.outputs}, c.mlops, c.out_types,
            f"kserve binary ({c.name})")

    want = c.outputs[-1]
    req = request(False, "kserve-one", request_outputs=[RequestedOutput(want)])
    res = await k.infer(c.url, req, model_name=c.name, headers=c.h())
    compare({o.name: o.as_numpy() for o in res.outputs}, c.mlops, c.out_types,
            f"kserve requested output ({c.name})", only=[want])
    await k.close()


async def refused_checks(c):
    """Without the credential: model routes 401 by both clients, health still answers."""
    t = th.InferenceServerClient(url=c.host, connection_timeout=60, network_timeout=60)
    check(t.is_server_live() and t.is_server_ready(), "health needs no credential")
    i = th.InferInput(c.inputs[0], [1], c.in_types[c.inputs[0]])
    i.set_data_from_numpy(column(c.cells[c.inputs[0]][:1], c.in_types[c.inputs[0]], np.nan))
    for what, call in [("infer", lambda: t.infer(c.name, [i])),
                       ("metadata", lambda: t.get_model_metadata(c.name)),
                       ("wrong credential", lambda: t.infer(
                           c.name, [i], headers={"Authorization": "Bearer not-it"}))]:
        try:
            call()
            fail(f"tritonclient {what} without the credential was answered")
        except InferenceServerException as e:
            check(e.status() == "401", f"tritonclient {what}: {e.status()} {e}")
    check(not t.is_model_ready(c.name), "model ready without the credential")
    t.close()
    k = InferenceRESTClient(RESTConfig(protocol="v2", retries=1, timeout=60))
    req = InferRequest(model_name=c.name, infer_inputs=[
        InferInput(c.inputs[0], [1], c.in_types[c.inputs[0]],
                   data=json_column(c.cells[c.inputs[0]][:1], c.in_types[c.inputs[0]]))])
    try:
        await k.infer(c.url, req, model_name=c.name)
        fail("kserve infer without the credential was answered")
    except httpx.HTTPStatusError as e:
        check(e.response.status_code == 401, f"kserve: {e.response.status_code}")
        check("error" in e.response.json(), f"kserve 401 body {e.response.text}")
    await k.close()
    print(f"ok: without the credential the model routes of {c.name} answer 401")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--case", nargs=3, action="append", metavar=("URL", "NAME", "CSV"),
                    required=True)
    ap.add_argument("--bearer")
    ap.add_argument("--refused", action="store_true")
    a = ap.parse_args()
    headers = {"Authorization": f"Bearer {a.bearer}"} if a.bearer else {}
    for url, name, path in a.case:
        c = Case(url, name, path, headers)
        if a.refused:
            asyncio.run(refused_checks(c))
        triton_checks(c)
        asyncio.run(kserve_checks(c))
    print("v2 client checks passed")


if __name__ == "__main__":
    main()
