"""The dai-mojo-runtime image's MOJO2 scorer: H2O's C++ runtime (PyPI `daimojo`) behind the
part of the H2O MLOps scoring API the runtime shim uses, started by the shim as its
external Driverless AI scorer (the image's DAI_SCORER_COMMAND):

    python dai_scorer.py --pipeline /model/pipeline.mojo --host 127.0.0.1 --port 9000

It loads the pipeline once, then serves on HOST:PORT
  GET  /model/id      the pipeline's uuid (the shim's health route: 200 once it can score)
  GET  /model/schema  inputs and outputs, so the shim can check it scores the manifest's
  POST /model/score   {"fields": [...], "rows": [[...]]} of string cells (the shim has
                      checked them against the manifest); a cell equal to one of the
                      pipeline's missing values (or null) is missing. The answer has one
                      row per input row; numbers are the shortest text that reads back as
                      the same value of the output's type (float32 as float32).

Exit codes at start: 78 (EX_CONFIG) when the runtime finds no usable licence, after a
message saying how to provide one; 1 when the pipeline cannot be loaded for another reason
(e.g. a TOML pipeline of Driverless AI 1.6 or older, which the C++ runtime does not read:
use the Java mojo2-runtime); 2 for bad arguments. The licence is read by daimojo itself
from DRIVERLESS_AI_LICENSE_KEY, DRIVERLESS_AI_LICENSE_FILE, /license/license.sig or
~/.driverlessai/license.sig; this script never reads or prints it.
"""

import argparse
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LICENCE_EXIT = 78
HOW_TO_LICENSE = (
    "no usable Driverless AI licence: the MOJO2 runtime (daimojo) refuses to load a pipeline "
    "without one. Provide it at deploy time, never in the image: mount the licence file "
    "(e.g. from a Kubernetes Secret) at /license/license.sig, or mount it elsewhere and set "
    "DRIVERLESS_AI_LICENSE_FILE to its path, or set DRIVERLESS_AI_LICENSE_KEY to the key "
    "itself (from a Secret)"
)
API_TYPES = {
    "float32": "Float32",
    "float64": "Float64",
    "int32": "Int32",
    "int64": "Int64",
    "bool": "Bool",
}


class BadRequest(Exception):
    pass


def load(path):
    import daimojo

    try:
        return daimojo.model(path)
    except RuntimeError as e:
        if "license" in str(e).lower():
            print(HOW_TO_LICENSE, file=sys.stderr, flush=True)
            sys.exit(LICENCE_EXIT)
        print(
            f"daimojo {daimojo.__version__} could not load {path}: {e} (a TOML pipeline of "
            "Driverless AI 1.6 or older needs the Java mojo2-runtime instead)",
            file=sys.stderr,
            flush=True,
        )
        sys.exit(1)


def parse_cell(kind, text, missing):
    if text is None or text in missing:
        return None
    if not isinstance(text, str):
        text = json.dumps(text)
    try:
        if kind.startswith("float"):
            return float(text)
        if kind.startswith("int"):
            v = float(text)
            if v != int(v):
                raise ValueError
            return int(v)
    except ValueError:
        raise BadRequest(f"{text!r} is not a {kind}") from None
    if kind == "bool":
        low = text.strip().lower()
        if low in ("true", "1"):
            return True
        if low in ("false", "0"):
            return False
        raise BadRequest(f"{text!r} is not a boolean")
    return text


def cell_text(kind, v):
    import numpy as np

    if v is None:
        return ""
    if kind == "float32":
        return str(np.float32(v))
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(v)
    return str(v)


class Scorer:
    def __init__(self, model):
        self.model = model
        self.inputs = list(zip(model.feature_names, model.feature_types))
        # output_names is only filled by a first predict(); schema() has them at load.
        names, types = model.schema()
        self.outputs = list(zip(names, types))
        self.missing = set(model.missing_values)

    def schema(self):
        def field(n, t):
            return {"name": n, "dataType": API_TYPES.get(t, "Str")}

        return {
            "id": self.model.uuid,
            "schema": {
                "inputFields": [field(n, t) for n, t in self.inputs],
                "outputFields": [field(n, t) for n, t in self.outputs],
            },
        }

    def score(self, request):
        import datatable as dt

        fields, rows = request.get("fields"), request.get("rows")
        if not isinstance(fields, list) or not isinstance(rows, list) or not rows:
            raise BadRequest("the request needs fields and rows")
        position = {f: i for i, f in enumerate(fields)}
        absent = [n for n, _ in self.inputs if n not in position]
        if absent:
            raise BadRequest(f"missing input fields {absent}")
        columns = {}
        for name, kind in self.inputs:
            p = position[name]
            values = []
            for r, row in enumerate(rows):
                if len(row) != len(fields):
                    raise BadRequest(f"row {r} has {len(row)} cells for {len(fields)} fields")
                try:
                    values.append(parse_cell(kind, row[p], self.missing))
                except BadRequest as e:
                    raise BadRequest(f"row {r}: column {name!r}: {e}") from None
            columns[name] = values
        result = self.model.predict(dt.Frame(columns))
        kinds = [t for _, t in self.outputs]
        cols = result.to_list()
        score = [[cell_text(kinds[c], cols[c][r]) for c in range(len(cols))] for r in range(result.nrows)]
        return {"id": self.model.uuid, "fields": list(result.names), "score": score}


def handler(scorer):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def reply(self, status, body, content_type="application/json"):
            data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            if self.path == "/model/id":
                self.reply(200, scorer.model.uuid, "text/plain")
            elif self.path == "/model/schema":
                self.reply(200, scorer.schema())
            else:
                self.reply(404, {"detail": f"no route {self.path}"})

        def do_POST(self):
            if self.path != "/model/score":
                self.reply(404, {"detail": f"no route {self.path}"})
                return
            try:
                length = int(self.headers.get("Content-Length", "0"))
                self.reply(200, scorer.score(json.loads(self.rfile.read(length))))
            except (BadRequest, ValueError) as e:
                self.reply(400, {"detail": f"Invalid scoring request due to: {e}"})
            except Exception as e:  # the runtime failed on checked rows
                self.reply(500, {"detail": f"Failed scoring request due to: {e}"})

        def log_message(self, fmt, *args):  # the shim logs every request itself
            pass

    return Handler


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pipeline", required=True, help="the pipeline.mojo to load")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    a = p.parse_args()
    model = load(a.pipeline)
    scorer = Scorer(model)
    print(
        f"loaded {a.pipeline}: uuid {model.uuid}, DAI {model.dai_version or '?'}, "
        f"{len(scorer.inputs)} inputs, outputs {[n for n, _ in scorer.outputs]}",
        flush=True,
    )
    ThreadingHTTPServer((a.host, a.port), handler(scorer)).serve_forever()


if __name__ == "__main__":
    main()
