#!/usr/bin/env python3
"""Generate the H2O-3 MOJO sample artifacts in this folder with the REAL tools.

What it does
------------
* starts a local single-node H2O (h2o.init, max_mem_size=1G, nthreads=1),
* builds small deterministic synthetic data sets with numpy (fixed seed; no
  network, nothing downloaded),
* trains SMALL models (few trees, shallow depth, a few hundred rows) and exports
  each one as a MOJO with ``model.download_mojo(path=..., get_genmodel_jar=True)``,
* writes ``<name>.input.csv`` (~30 scoring rows, header = the model's input
  columns as listed in the MOJO's model.ini, with missing values as empty cells
  and, for models with categorical inputs, levels never seen in training),
* scores that file with h2o-genmodel's own ``hex.genmodel.tools.PredictCsv`` on
  the exported MOJO and writes ``<name>.predictions.csv``.  PredictCsv is run
  WITHOUT ``--decimal`` so it prints every double as an exact Java hex float
  (Double.toHexString); each hex float is then rewritten as Python ``repr`` of
  the same double (shortest decimal that round-trips), so every number in the
  predictions files is the exact double that genmodel computed.  Non-numeric
  cells (class labels) and genmodel's ``NA`` are kept as written.  (PredictCsv
  is also run with ``--decimal`` as a cross-check: every value must parse to
  the same double.)
* as a sanity check compares with ``h2o.predict`` on the same rows (uploaded to
  the running H2O) and prints the max abs difference,
* writes ``expected.json`` (algo, category, input schema, output columns per MOJO),
  derived from the MOJO's model.ini / domains and from the PredictCsv header.

Word2vec is the one exception: PredictCsv has no WordEmbedding branch, so its
reference vectors come from a tiny Java driver (embedded below) that calls
genmodel's ``EasyPredictModelWrapper.predictWord2Vec`` on the MOJO.  Likewise
Uplift DRF and Target Encoder (categories PredictCsv refuses): ``WrapperPredict``
(embedded below) calls ``predictUpliftBinomial`` / ``predictTargetEncoding``, and
also prints the columns genmodel's wrapper reads and its refusal of contributions
(recorded as ``no_contributions`` in expected.json) for the models of ``more_algos``.

The categorical-encoding, weights and fold models (``run_encodings``, at the end) take
their input columns from genmodel too: a small Java driver prints the columns the MOJO's
``EasyPredictModelWrapper`` reads (the original columns where genmodel encodes them
itself), and writes genmodel's prediction contributions as ``<name>.contributions.csv``.

How to run (versions used for the committed files: Python 3.11.7, OpenJDK 17.0.15,
h2o 3.46.0.11 from PyPI -- 3.46.0.12 refuses MOJO export -- numpy 2.x):

    python3 -m venv /tmp/h2o-venv
    /tmp/h2o-venv/bin/pip install h2o==3.46.0.11 requests tabulate numpy pandas
    /tmp/h2o-venv/bin/python testdata/h2o3/generate.py

Options: ``--out DIR`` (default: this folder), ``--work DIR`` (scratch dir for
training CSVs and the genmodel jar; default /tmp/h2o3-testdata-work),
``--port N`` (default 54777), ``--only a,b`` (train and export only the named models
and merge their entries into the existing ``expected.json``, kept sorted by name; the
other models' files are left untouched).  The h2o-genmodel.jar is left in the work dir and
copied to /tmp/h2o-genmodel.jar; it is never written into this folder.
MOJO zips embed a timestamp and uuid, so re-running changes the zip bytes but
the models and predictions are reproducible.
"""

import argparse
import csv
import json
import math
import os
import re
import shutil
import subprocess
import sys
import traceback
import zipfile

import numpy as np
import h2o
from h2o.estimators import (
    H2OGradientBoostingEstimator,
    H2ORandomForestEstimator,
    H2OGeneralizedLinearEstimator,
    H2OIsolationForestEstimator,
    H2OExtendedIsolationForestEstimator,
    H2OKMeansEstimator,
    H2ODeepLearningEstimator,
    H2OXGBoostEstimator,
    H2OStackedEnsembleEstimator,
    H2OPrincipalComponentAnalysisEstimator,
    H2OGeneralizedLowRankEstimator,
    H2OWord2vecEstimator,
    H2OGeneralizedAdditiveEstimator,
    H2OCoxProportionalHazardsEstimator,
)

HERE = os.path.dirname(os.path.abspath(__file__))
SEED = 1234
HEX_RE = re.compile(r"^-?0x[0-9a-fA-F]+(\.[0-9a-fA-F]*)?p[-+]?\d+$")
COLORS = ["red", "green", "blue", "yellow"]

# ----------------------------------------------------------------------------
# synthetic data
# ----------------------------------------------------------------------------


def num(v, nd=3):
    """Round to a short decimal so CSV text <-> double is unambiguous."""
    return float(round(float(v), nd))


def make_features(rng, n, with_color=True):
    """Rows with x1 (normal, ~10% NA), x2 (uniform 0..10, ~5% NA), x3 (count),
    color (categorical, 4 levels, ~8% NA). NA is None."""
    rows = []
    for _ in range(n):
        x1 = num(rng.normal(0.0, 1.0))
        x2 = num(rng.uniform(0.0, 10.0))
        x3 = float(rng.poisson(3.0))
        color = COLORS[int(rng.integers(0, 4))]
        if rng.random() < 0.10:
            x1 = None
        if rng.random() < 0.05:
            x2 = None
        if rng.random() < 0.08:
            color = None
        r = {"x1": x1, "x2": x2, "x3": x3}
        if with_color:
            r["color"] = color
        rows.append(r)
    return rows


COLOR_EFFECT = {"red": 0.8, "green": -0.5, "blue": 0.2, "yellow": -1.0, None: 0.0}


def lin(r):
    x1 = 0.0 if r["x1"] is None else r["x1"]
    x2 = 5.0 if r["x2"] is None else r["x2"]
    return 1.3 * x1 - 0.25 * (x2 - 5.0) + 0.3 * (r["x3"] - 3.0) + COLOR_EFFECT[r.get("color")]


def binomial_data(rng, n, labels=("no", "yes"), resp="label"):
    rows = make_features(rng, n)
    for r in rows:
        p = 1.0 / (1.0 + math.exp(-lin(r)))
        r[resp] = labels[1] if rng.random() < p else labels[0]
    return rows


def regression_data(rng, n):
    rows = make_features(rng, n)
    for r in rows:
        r["y"] = num(3.0 * lin(r) + 10.0 + rng.normal(0.0, 0.5))
    return rows


def multinomial_data(rng, n):
    rows = make_features(rng, n)
    for r in rows:
        x1 = 0.0 if r["x1"] is None else r["x1"]
        x2 = 5.0 if r["x2"] is None else r["x2"]
        c = COLOR_EFFECT[r.get("color")]
        s = np.array([1.5 * x1 + c, -0.6 * (x2 - 5.0), 0.4 * (r["x3"] - 3.0) - c])
        p = np.exp(s - s.max())
        p /= p.sum()
        r["species"] = ["setosa", "versicolor", "virginica"][int(rng.choice(3, p=p))]
    return rows


def poisson_data(rng, n):
    rows = make_features(rng, n)
    for r in rows:
        r["count"] = float(rng.poisson(math.exp(0.5 + 0.3 * lin(r))))
    return rows


def tweedie_data(rng, n):
    rows = make_features(rng, n)
    for r in rows:
        k = rng.poisson(math.exp(-0.2 + 0.3 * lin(r)))
        r["claim"] = num(rng.gamma(2.0, 50.0, size=k).sum()) if k > 0 else 0.0
    return rows


def anomaly_data(rng, n, with_color=True):
    rows = make_features(rng, n, with_color=with_color)
    for r in rows[:8]:  # a few outliers
        r["x1"] = num(rng.normal(6.0, 1.0))
        r["x3"] = float(rng.poisson(15.0))
    return rows


def cluster_data(rng, n):
    rows = []
    centers = [(-3.0, 2.0, "red"), (0.0, 8.0, "green"), (3.0, 4.0, "blue")]
    for i in range(n):
        c = centers[i % 3]
        color = c[2] if rng.random() < 0.8 else COLORS[int(rng.integers(0, 4))]
        r = {"x1": num(rng.normal(c[0], 0.7)), "x2": num(rng.normal(c[1], 0.7)),
             "x3": float(rng.poisson(3.0)), "color": color}
        if rng.random() < 0.05:
            r["x1"] = None
        if rng.random() < 0.05:
            r["color"] = None
        rows.append(r)
    return rows


W2V_TOPICS = [
    ["cat", "dog", "pet", "fur", "paw", "bark"],
    ["car", "road", "wheel", "engine", "drive", "fuel"],
    ["rain", "cloud", "sun", "wind", "storm", "sky"],
]


def word2vec_data(rng, n_sentences):
    rows = []
    for i in range(n_sentences):
        topic = W2V_TOPICS[i % 3]
        for _ in range(int(rng.integers(4, 8))):
            rows.append({"words": topic[int(rng.integers(0, len(topic)))]})
        rows.append({"words": None})  # NA separates sentences
    return rows


def scoring_rows(rows, cat_cols, numeric_cols):
    """Take generated rows and inject deliberate missing values/unseen levels."""
    rows = [dict(r) for r in rows]
    if numeric_cols:
        rows[3][numeric_cols[0]] = None
        rows[9][numeric_cols[-1]] = None
        rows[17][numeric_cols[0]] = None
        rows[17][numeric_cols[-1]] = None
    for c in cat_cols:
        rows[5][c] = None
        rows[7][c] = "purple"       # never seen in training
        rows[21][c] = "UNSEEN_LEVEL"  # never seen in training
    for c in list(rows[13].keys()):  # one row that is entirely missing
        rows[13][c] = None
    return rows


# ----------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------


def cell(v, na_token=""):
    if v is None:
        return na_token
    if isinstance(v, float):
        if math.isnan(v):
            return na_token
        return repr(v)
    return str(v)


def write_csv(path, cols, rows, na_token=""):
    with open(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(cols)
        for r in rows:
            w.writerow([cell(r.get(c), na_token) for c in cols])


def read_csv(path):
    with open(path, newline="") as f:
        rd = csv.reader(f)
        header = next(rd)
        return header, [row for row in rd]


def read_mojo_ini(zpath):
    info, cols, domains = {}, [], {}
    with zipfile.ZipFile(zpath) as z:
        text = z.read("model.ini").decode("utf-8")
        sec = None
        for line in text.splitlines():
            s = line.strip()
            if not s:
                continue
            if s.startswith("[") and s.endswith("]"):
                sec = s[1:-1]
                continue
            if sec == "info":
                k, _, v = s.partition("=")
                info[k.strip()] = v.strip()
            elif sec == "columns":
                cols.append(s)
            elif sec == "domains":
                idx, rest = s.split(":", 1)
                _, fname = rest.split()
                domains[int(idx)] = z.read("domains/" + fname).decode("utf-8").splitlines()
    return info, cols, domains


def hex_to_repr(s):
    if HEX_RE.match(s):
        return repr(float.fromhex(s))
    return s


class Generator:
    def __init__(self, out, work):
        self.out = out
        self.work = work
        self.jar = os.path.join(work, "h2o-genmodel.jar")
        self.expected = []
        self.failures = []
        self.sizes = []

    # -- data upload -----------------------------------------------------
    def frame(self, name, rows, cols, types, na_token=""):
        path = os.path.join(self.work, name + ".train.csv")
        write_csv(path, cols, rows, na_token=na_token)
        kw = {"na_strings": [na_token]} if na_token else {}
        return h2o.upload_file(path, destination_frame=name,
                               col_types={c: types[c] for c in cols},
                               header=1, **kw)

    # -- export + reference predictions -----------------------------------
    def export(self, name, model, score_rows, compare=True, extra=None):
        """extra: optional (suffix, [PredictCsv flags]) -> also writes
        <name>.<suffix>.predictions.csv; that output is the one compared with
        h2o.predict (used for GLRM, whose h2o.predict returns the reconstruction)."""
        try:
            tmp = model.download_mojo(path=self.work, get_genmodel_jar=True)
        except Exception as e:  # noqa: BLE001
            self.fail(name, "MOJO export failed: %s" % str(e).splitlines()[0])
            return
        zpath = os.path.join(self.out, name + ".zip")
        shutil.move(tmp, zpath)
        info, cols, domains = read_mojo_ini(zpath)
        supervised = info.get("supervised") == "true"
        n_features = int(info.get("n_features", len(cols)))
        in_cols = cols[:n_features]
        if supervised:
            assert n_features == len(cols) - 1, (name, n_features, cols)
        inputs = [{"name": c, "type": "String" if i in domains else "Float64"}
                  for i, c in enumerate(in_cols)]
        in_path = os.path.join(self.out, name + ".input.csv")
        write_csv(in_path, in_cols, score_rows)

        pred_path = os.path.join(self.out, name + ".predictions.csv")
        header, conv = self.reference(name, zpath, in_path, pred_path, [])
        extra_entry = None
        cmp_header, cmp_rows = header, conv
        if extra:
            suffix, flags = extra
            xfile = "%s.%s.predictions.csv" % (name, suffix)
            xh, xr = self.reference(name + "." + suffix, zpath, in_path, os.path.join(self.out, xfile), flags)
            extra_entry = {"predictions": xfile, "predict_csv_flags": flags, "outputs": xh}
            cmp_header, cmp_rows = xh, xr

        entry = {
            "name": name,
            "mojo": name + ".zip",
            "input": name + ".input.csv",
            "predictions": name + ".predictions.csv",
            "algo": info.get("algo"),
            "algorithm": info.get("algorithm"),
            "category": info.get("category"),
            "supervised": supervised,
            "mojo_version": info.get("mojo_version"),
            "h2o_version": info.get("h2o_version"),
            "inputs": inputs,
            "outputs": header,
            "domains": {c: domains[i] for i, c in enumerate(in_cols) if i in domains},
            "n_rows": len(conv),
        }
        if supervised:
            entry["response"] = cols[-1]
            entry["response_domain"] = domains.get(len(cols) - 1)
        if extra_entry:
            entry["extra"] = extra_entry
        self.expected.append(entry)
        if compare:
            self.compare(name, model, in_path, inputs, cmp_header, cmp_rows)
        self.sizes.append(name + ".zip")

    def reference(self, tag, zpath, in_path, pred_path, flags):
        """Run PredictCsv (hex output) -> exact doubles; cross-check with --decimal."""
        hex_path = os.path.join(self.work, tag + ".predictions.hex.csv")
        dec_path = os.path.join(self.work, tag + ".predictions.decimal.csv")
        self.predict_csv(zpath, in_path, hex_path, flags)
        self.predict_csv(zpath, in_path, dec_path, flags + ["--decimal"])
        header, rows = read_csv(hex_path)
        _, drows = read_csv(dec_path)
        assert len(rows) == len(drows)
        conv = [[hex_to_repr(v) for v in r] for r in rows]
        # cross-check: --decimal output parses to the very same doubles
        for r, h, d in zip(conv, rows, drows):
            assert len(r) == len(header), (tag, header, r)
            for a, hx, b in zip(r, h, d):
                if HEX_RE.match(hx):
                    assert float(a) == float(b), (tag, a, b)
                else:
                    assert a == b, (tag, a, b)
        with open(pred_path, "w", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(header)
            w.writerows(conv)
        return header, conv

    def predict_csv(self, zpath, in_path, out_path, flags):
        cmd = ["java", "-cp", self.jar, "hex.genmodel.tools.PredictCsv",
               "--mojo", zpath, "--input", in_path, "--output", out_path] + flags
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0 or "error" in r.stdout.lower():
            raise RuntimeError("PredictCsv failed: %s\n%s\n%s" % (cmd, r.stdout, r.stderr))
        if r.stdout.strip():
            print("   PredictCsv says: " + r.stdout.strip().replace("\n", " | "))

    def compare(self, name, model, in_path, inputs, g_header, g_rows):
        types = {i["name"]: ("enum" if i["type"] == "String" else "real") for i in inputs}
        fr = h2o.upload_file(in_path, destination_frame=name + "_score", col_types=types, header=1)
        pred = model.predict(fr)
        h_rows = pred.as_data_frame(use_pandas=False, header=True)
        h_header, h_rows = h_rows[0], h_rows[1:]
        idx = {}
        for j, c in enumerate(g_header):
            if c in h_header:
                idx[j] = h_header.index(c)
            elif len(h_header) == len(g_header):
                idx[j] = j
        maxdiff, label_mismatch, na_only_genmodel = 0.0, 0, 0
        for gr, hr in zip(g_rows, h_rows):
            for j, k in idx.items():
                a, b = gr[j], (hr[k] if k < len(hr) else "")  # an all-NA row comes back as []
                if a == "NA" and b in ("", "NA", "nan"):
                    continue  # missing on both sides
                if a == "NA":
                    na_only_genmodel += 1
                    continue
                try:
                    fa, fb = float(a), float(b)
                except ValueError:
                    label_mismatch += (a != b)
                    continue
                if math.isnan(fa) and math.isnan(fb):
                    continue
                maxdiff = max(maxdiff, abs(fa - fb))
        print("   sanity vs h2o.predict: h2o cols=%s genmodel cols=%s max|diff|=%.3g label mismatches=%d"
              " cells NA in genmodel only=%d" % (h_header, g_header, maxdiff, label_mismatch, na_only_genmodel))

    def fail(self, name, why):
        print("!! %s: %s" % (name, why))
        self.failures.append({"name": name, "reason": why})


W2V_JAVA = r"""
import hex.genmodel.MojoModel;
import hex.genmodel.easy.EasyPredictModelWrapper;
import hex.genmodel.easy.RowData;
import hex.genmodel.easy.prediction.Word2VecPrediction;
import java.io.*;
import java.util.*;

/** Scores a one-column CSV of words with a word2vec MOJO (PredictCsv lacks WordEmbedding). */
public class W2VPredict {
  public static void main(String[] a) throws Exception {
    EasyPredictModelWrapper m = new EasyPredictModelWrapper(
        new EasyPredictModelWrapper.Config().setModel(MojoModel.load(a[0])));
    BufferedReader in = new BufferedReader(new FileReader(a[1]));
    String col = in.readLine().trim();
    int vs = -1;
    List<String> out = new ArrayList<>();
    String line;
    while ((line = in.readLine()) != null) {
      String w = line.trim();
      if (w.equals("\"\"")) w = "";
      RowData row = new RowData();
      if (!w.isEmpty()) row.put(col, w);
      Word2VecPrediction p = m.predictWord2Vec(row);
      float[] v = p.wordEmbeddings == null ? null : p.wordEmbeddings.get(col);
      StringBuilder sb = new StringBuilder();
      if (v == null) { out.add(null); continue; }
      vs = v.length;
      for (int i = 0; i < v.length; i++) {
        if (i > 0) sb.append(',');
        sb.append(Double.toHexString((double) v[i]));
      }
      out.add(sb.toString());
    }
    if (vs < 0) throw new RuntimeException("no known word in input");
    PrintWriter pw = new PrintWriter(new FileWriter(a[2]));
    StringBuilder h = new StringBuilder();
    for (int i = 0; i < vs; i++) { if (i > 0) h.append(','); h.append("C").append(i + 1); }
    pw.println(h);
    for (String s : out) {
      if (s == null) { String[] na = new String[vs]; Arrays.fill(na, "NA"); pw.println(String.join(",", na)); }
      else pw.println(s);
    }
    pw.close();
  }
}
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=HERE)
    ap.add_argument("--work", default="/tmp/h2o3-testdata-work")
    ap.add_argument("--port", type=int, default=54777)
    ap.add_argument("--only", default="",
                    help="comma-separated model names: train and export only these, and merge "
                         "their entries into the existing expected.json (the others stay as they are)")
    args = ap.parse_args()
    only = {n.strip() for n in args.only.split(",") if n.strip()}
    os.makedirs(args.out, exist_ok=True)
    os.makedirs(args.work, exist_ok=True)
    g = Generator(os.path.abspath(args.out), os.path.abspath(args.work))

    h2o.init(max_mem_size="1G", nthreads=1, port=args.port, strict_version_check=False)
    h2o.no_progress()
    try:
        run_all(g, only)
    finally:
        h2o.cluster().shutdown()

    shutil.copyfile(g.jar, "/tmp/h2o-genmodel.jar")
    exp_path = os.path.join(g.out, "expected.json")
    models, skipped = g.expected, g.failures
    if only:
        unknown = only - {m["name"] for m in g.expected} - {x["name"] for x in g.failures}
        if unknown:
            print("!! --only names no model of this script: %s" % ", ".join(sorted(unknown)))
        with open(exp_path) as f:
            old = json.load(f)
        models = [m for m in old["models"] if m["name"] not in only] + g.expected
        skipped = [x for x in old.get("skipped", []) if x["name"] not in only] + g.failures
    with open(exp_path, "w") as f:
        json.dump({"generator": "testdata/h2o3/generate.py",
                   "h2o_version": h2o.__version__,
                   "predict_csv": "java -cp h2o-genmodel.jar hex.genmodel.tools.PredictCsv "
                                  "--mojo <name>.zip --input <name>.input.csv --output <out> "
                                  "(hex floats converted to shortest round-trip decimal)",
                   "models": sorted(models, key=lambda m: m["name"]),
                   "skipped": sorted(skipped, key=lambda x: x["name"])}, f, indent=2)
        f.write("\n")
    print("\n| file | bytes |\n| --- | --- |")
    for fn in sorted(os.listdir(g.out)):
        print("| %s | %d |" % (fn, os.path.getsize(os.path.join(g.out, fn))))
    if g.failures:
        print("\nSkipped/failed:")
        for x in g.failures:
            print(" - %s: %s" % (x["name"], x["reason"]))


FEAT = ["x1", "x2", "x3", "color"]
TYPES = {"x1": "real", "x2": "real", "x3": "real", "color": "enum", "label": "enum",
         "target": "enum", "y": "real", "species": "enum", "count": "real", "claim": "real",
         "words": "string"}


def run_all(g, only=frozenset()):
    """Trains and exports every model (or only the names in `only`). Frames are always
    built in the same order, so the random streams, and with them every model, do not
    depend on which models are selected."""
    rng = np.random.default_rng(SEED)
    score_src = make_features(np.random.default_rng(SEED + 1), 30)
    score_mixed = scoring_rows(score_src, ["color"], ["x1", "x2", "x3"])
    score_numeric = scoring_rows([{k: r[k] for k in ("x1", "x2", "x3")} for r in score_src],
                                 [], ["x1", "x2", "x3"])

    def step(name, fn):
        if only and name not in only:
            return
        print("== %s" % name)
        try:
            fn()
        except Exception as e:  # noqa: BLE001
            g.fail(name, "%s: %s" % (type(e).__name__, str(e).strip().splitlines()[0] if str(e).strip() else ""))

    # ---------------- frames
    binom = binomial_data(rng, 400)
    fb = g.frame("binom", binom, FEAT + ["label"], TYPES)
    binom01 = binomial_data(rng, 400, labels=(0, 1), resp="target")
    fb01 = g.frame("binom01", binom01, FEAT + ["target"], TYPES)
    reg = regression_data(rng, 400)
    fr = g.frame("reg", reg, FEAT + ["y"], TYPES)
    multi = multinomial_data(rng, 450)
    fm = g.frame("multi", multi, FEAT + ["species"], TYPES)
    pois = poisson_data(rng, 400)
    fp = g.frame("pois", pois, FEAT + ["count"], TYPES)
    twd = tweedie_data(rng, 400)
    ft = g.frame("tweedie", twd, FEAT + ["claim"], TYPES)
    anom = anomaly_data(rng, 300)
    fa = g.frame("anom", anom, FEAT, TYPES)
    anom_num = anomaly_data(rng, 300, with_color=False)
    fan = g.frame("anom_num", anom_num, ["x1", "x2", "x3"], TYPES)
    binom_se = binomial_data(rng, 150)  # smaller: the MOJO carries 4 models' metrics JSON
    fse = g.frame("binom_se", binom_se, FEAT + ["label"], TYPES)
    clus = cluster_data(rng, 300)
    fc = g.frame("clus", clus, FEAT, TYPES)
    words = word2vec_data(rng, 60)

    def tr(model, frame, y=None, x=FEAT):
        model.train(x=x, y=y, training_frame=frame)
        return model

    # ---------------- GBM
    step("gbm_binomial", lambda: g.export("gbm_binomial", tr(H2OGradientBoostingEstimator(
        model_id="gbm_binomial", ntrees=5, max_depth=3, min_rows=5, seed=SEED), fb, "label"), score_mixed))
    step("gbm_binomial_numlabels", lambda: g.export("gbm_binomial_numlabels", tr(H2OGradientBoostingEstimator(
        model_id="gbm_binomial_numlabels", ntrees=5, max_depth=3, min_rows=5, seed=SEED), fb01, "target"),
        score_mixed))
    step("gbm_regression", lambda: g.export("gbm_regression", tr(H2OGradientBoostingEstimator(
        model_id="gbm_regression", ntrees=5, max_depth=3, min_rows=5, seed=SEED), fr, "y"), score_mixed))
    step("gbm_multinomial", lambda: g.export("gbm_multinomial", tr(H2OGradientBoostingEstimator(
        model_id="gbm_multinomial", ntrees=4, max_depth=3, min_rows=5, seed=SEED), fm, "species"), score_mixed))

    # ---------------- DRF
    step("drf_multinomial", lambda: g.export("drf_multinomial", tr(H2ORandomForestEstimator(
        model_id="drf_multinomial", ntrees=4, max_depth=4, min_rows=5, seed=SEED), fm, "species"), score_mixed))
    step("drf_binomial", lambda: g.export("drf_binomial", tr(H2ORandomForestEstimator(
        model_id="drf_binomial", ntrees=5, max_depth=4, min_rows=5, seed=SEED), fb, "label"), score_mixed))
    step("drf_regression", lambda: g.export("drf_regression", tr(H2ORandomForestEstimator(
        model_id="drf_regression", ntrees=5, max_depth=4, min_rows=5, seed=SEED), fr, "y"), score_mixed))

    # ---------------- GLM
    step("glm_binomial", lambda: g.export("glm_binomial", tr(H2OGeneralizedLinearEstimator(
        model_id="glm_binomial", family="binomial", lambda_=1e-4, seed=SEED), fb, "label"), score_mixed))
    step("glm_regression", lambda: g.export("glm_regression", tr(H2OGeneralizedLinearEstimator(
        model_id="glm_regression", family="gaussian", lambda_=1e-4, seed=SEED), fr, "y"), score_mixed))
    step("glm_multinomial", lambda: g.export("glm_multinomial", tr(H2OGeneralizedLinearEstimator(
        model_id="glm_multinomial", family="multinomial", lambda_=1e-4, seed=SEED), fm, "species"), score_mixed))
    step("glm_poisson", lambda: g.export("glm_poisson", tr(H2OGeneralizedLinearEstimator(
        model_id="glm_poisson", family="poisson", link="log", lambda_=1e-4, seed=SEED), fp, "count"),
        score_mixed))
    step("glm_tweedie", lambda: g.export("glm_tweedie", tr(H2OGeneralizedLinearEstimator(
        model_id="glm_tweedie", family="tweedie", link="tweedie", tweedie_variance_power=1.5,
        tweedie_link_power=0.0, lambda_=1e-4, seed=SEED), ft, "claim"), score_mixed))

    # ---------------- anomaly detection
    step("isolation_forest", lambda: g.export("isolation_forest", tr(H2OIsolationForestEstimator(
        model_id="isolation_forest", ntrees=10, max_depth=6, sample_size=64, seed=SEED), fa), score_mixed))
    step("extended_isolation_forest", lambda: g.export("extended_isolation_forest", tr(
        H2OExtendedIsolationForestEstimator(model_id="extended_isolation_forest", ntrees=10, sample_size=64,
                                            extension_level=1, seed=SEED), fan, x=["x1", "x2", "x3"]),
        score_numeric))

    # ---------------- clustering
    step("kmeans", lambda: g.export("kmeans", tr(H2OKMeansEstimator(
        model_id="kmeans", k=3, standardize=True, seed=SEED, max_iterations=20), fc), score_mixed))

    # ---------------- deep learning
    dl = dict(hidden=[5, 5], epochs=5, reproducible=True, seed=SEED)
    step("deeplearning_binomial", lambda: g.export("deeplearning_binomial", tr(H2ODeepLearningEstimator(
        model_id="deeplearning_binomial", **dl), fb, "label"), score_mixed))
    step("deeplearning_regression", lambda: g.export("deeplearning_regression", tr(H2ODeepLearningEstimator(
        model_id="deeplearning_regression", **dl), fr, "y"), score_mixed))
    step("deeplearning_autoencoder", lambda: g.export("deeplearning_autoencoder", tr(H2ODeepLearningEstimator(
        model_id="deeplearning_autoencoder", autoencoder=True, activation="Tanh", hidden=[3], epochs=5,
        reproducible=True, seed=SEED), fa), score_mixed))

    # ---------------- XGBoost
    if H2OXGBoostEstimator.available():
        step("xgboost_binomial", lambda: g.export("xgboost_binomial", tr(H2OXGBoostEstimator(
            model_id="xgboost_binomial", ntrees=5, max_depth=3, seed=SEED, backend="cpu"), fb, "label"),
            score_mixed))
        step("xgboost_regression", lambda: g.export("xgboost_regression", tr(H2OXGBoostEstimator(
            model_id="xgboost_regression", ntrees=5, max_depth=3, seed=SEED, backend="cpu"), fr, "y"),
            score_mixed))
    else:
        g.fail("xgboost_binomial", "XGBoost not available in this h2o build")
        g.fail("xgboost_regression", "XGBoost not available in this h2o build")

    # ---------------- stacked ensemble
    def se():
        cv = dict(nfolds=3, fold_assignment="Modulo", keep_cross_validation_predictions=True, seed=SEED)
        b1 = tr(H2OGradientBoostingEstimator(model_id="se_base_gbm", ntrees=5, max_depth=3, min_rows=5, **cv),
                fse, "label")
        b2 = tr(H2OGeneralizedLinearEstimator(model_id="se_base_glm", family="binomial", lambda_=1e-4, **cv),
                fse, "label")
        m = H2OStackedEnsembleEstimator(model_id="stacked_ensemble_binomial", base_models=[b1, b2],
                                        metalearner_algorithm="glm", seed=SEED)
        m.train(x=FEAT, y="label", training_frame=fse)
        g.export("stacked_ensemble_binomial", m, score_mixed)
    step("stacked_ensemble_binomial", se)

    # ---------------- dimensionality reduction
    step("pca", lambda: g.export("pca", tr(H2OPrincipalComponentAnalysisEstimator(
        model_id="pca", k=2, transform="standardize", seed=SEED, impute_missing=True), fa), score_mixed))
    step("glrm", lambda: g.export("glrm", tr(H2OGeneralizedLowRankEstimator(
        model_id="glrm", k=2, transform="standardize", loss="quadratic", max_iterations=50, seed=SEED), fa),
        score_mixed, extra=("reconstruct", ["--glrmReconstruct"])))

    # ---------------- word2vec (PredictCsv has no WordEmbedding branch -> small Java driver)
    def w2v():
        fw = g.frame("w2v", words, ["words"], TYPES, na_token="NA")  # NA rows separate sentences
        m = H2OWord2vecEstimator(model_id="word2vec", vec_size=4, window_size=2, epochs=5, min_word_freq=1,
                                 sent_sample_rate=0.0, init_learning_rate=0.025)
        m.train(training_frame=fw)
        tmp = m.download_mojo(path=g.work, get_genmodel_jar=True)
        zpath = os.path.join(g.out, "word2vec.zip")
        shutil.move(tmp, zpath)
        info, cols, domains = read_mojo_ini(zpath)
        qwords = ["cat", "dog", "car", "engine", "rain", "sky", "pet", "road", None, "unknownword",
                  "storm", "fur", "wheel", "cloud", "bark", "drive", "sun", "paw", "fuel", "wind",
                  "zebra", None, "cat", "fur", "storm", "engine", "sky", "dog", "road", "rain"]
        in_col = cols[0]  # "words", the training column listed in model.ini
        in_path = os.path.join(g.out, "word2vec.input.csv")
        write_csv(in_path, [in_col], [{in_col: w} for w in qwords])
        src = os.path.join(g.work, "W2VPredict.java")
        with open(src, "w") as f:
            f.write(W2V_JAVA)
        subprocess.run(["javac", "-cp", g.jar, "-d", g.work, src], check=True)
        hex_path = os.path.join(g.work, "word2vec.predictions.hex.csv")
        subprocess.run(["java", "-cp", g.jar + os.pathsep + g.work, "W2VPredict", zpath, in_path, hex_path],
                       check=True)
        header, rows = read_csv(hex_path)
        conv = [[hex_to_repr(v) for v in r] for r in rows]
        with open(os.path.join(g.out, "word2vec.predictions.csv"), "w", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(header)
            w.writerows(conv)
        # sanity: h2o's own transform on the same words
        qf = h2o.upload_file(in_path, col_types={in_col: "string"}, header=1)
        hv = m.transform(qf, aggregate_method="NONE").as_data_frame(use_pandas=False, header=True)[1:]
        md = 0.0
        for a, b in zip(conv, hv):
            for x, y in zip(a, b):
                if x != "NA" and y not in ("", "NA", "nan"):
                    md = max(md, abs(float(x) - float(y)))
        print("   sanity vs h2o transform: max|diff|=%.3g" % md)
        g.expected.append({
            "name": "word2vec", "mojo": "word2vec.zip", "input": "word2vec.input.csv",
            "predictions": "word2vec.predictions.csv", "algo": info.get("algo"),
            "algorithm": info.get("algorithm"), "category": info.get("category"),
            "supervised": info.get("supervised") == "true", "mojo_version": info.get("mojo_version"),
            "h2o_version": info.get("h2o_version"),
            "inputs": [{"name": in_col, "type": "String"}], "outputs": header, "domains": {},
            "n_rows": len(conv),
            "note": "reference produced by EasyPredictModelWrapper.predictWord2Vec (PredictCsv does not "
                    "support WordEmbedding); vectors are float32 widened to double; NA = unknown/missing word",
        })
        g.sizes.append("word2vec.zip")
    step("word2vec", w2v)

    # ---------------- issue 15: RuleFit, isotonic regression, Uplift DRF, Target Encoder,
    # Word2Vec with blank lines (their own random stream and frames, made after all others)
    more_algos(g, step, score_mixed)

    # ---------------- GLM ordinal, GAM, CoxPH (their own random stream and frames)
    ordinal_gam_coxph(g, step)

    # ---------------- categorical encodings, weights and fold columns (own frames and stream)
    run_encodings(g, step)


# ----------------------------------------------------------------------------
# categorical encodings, weights and fold columns
# ----------------------------------------------------------------------------
#
# Own random stream (SEED + ENC_SEED_OFFSET) and own frames, created after all the
# others, so the models above do not change. The features add two categoricals to the
# usual ones: `city` (13 levels of unequal frequency: enough for EnumLimited, whose
# default max_categorical_levels is 10 and which the Python API cannot change for
# GBM/DRF/XGBoost, and for Binary's 4 bits) and `grade` (levels that read as integers,
# which genmodel's LabelEncoder maps to their value rather than their index).
#
# Inputs and references come from genmodel itself: `EncReference inputs` prints the
# columns the EasyPredictModelWrapper of the MOJO reads (its encoding's column mapping,
# the names whose index is a feature, plus the offset column), `PredictCsv` scores, and
# `EncReference contrib` computes contributions (loaded with the MOJO's metadata, as
# DRF needs; checked against `PredictCsv --predictContributions` where that works).

ENC_SEED_OFFSET = 1500
CITIES = ["amsterdam", "berlin", "cairo", "delhi", "essen", "faro", "genoa", "hanoi",
          "izmir", "jakarta", "kyoto", "lima", "madrid"]
CITY_P = np.array([13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1], dtype=float)
CITY_EFFECT = {c: (i % 5 - 2) * 0.4 for i, c in enumerate(CITIES)}
GRADES = ["1", "2", "3", "5", "8", "13"]
ENC_FEAT = ["x1", "x2", "color", "city", "grade"]
ENC_CATS = ["color", "city", "grade"]
ENC_TYPES = dict(TYPES, city="enum", grade="enum", w="real", off="real", fold="int")
ENCODINGS = {"onehot": "one_hot_explicit", "binary": "binary", "eigen": "eigen",
             "label_encoder": "label_encoder", "sort_by_response": "sort_by_response",
             "enum_limited": "enum_limited"}

ENC_JAVA = r"""
import hex.genmodel.CategoricalEncoding;
import hex.genmodel.MojoModel;
import hex.genmodel.easy.CategoricalEncoder;
import hex.genmodel.easy.EasyPredictModelWrapper;
import hex.genmodel.easy.RowData;
import java.io.*;
import java.nio.charset.StandardCharsets;
import java.nio.file.*;
import java.util.*;

/** What genmodel's row API reads for a MOJO (inputs), and its contributions (contrib). */
public class EncReference {
  static String q(String s) {
    if (s == null) return "null";
    return "\"" + s.replace("\\", "\\\\").replace("\"", "\\\"") + "\"";
  }

  static EasyPredictModelWrapper wrapper(MojoModel m, boolean contributions) throws Exception {
    return new EasyPredictModelWrapper(new EasyPredictModelWrapper.Config()
        .setModel(m).setConvertUnknownCategoricalLevelsToNa(true)
        .setEnableContributions(contributions));
  }

  public static void main(String[] a) throws Exception {
    MojoModel m = MojoModel.load(a[1], true);
    if (a[0].equals("inputs")) {
      CategoricalEncoding e = m.getCategoricalEncoding();
      Map<String, Integer> cm = e.createColumnMapping(m);
      Map<Integer, CategoricalEncoder> dm = e.createCategoricalEncoders(m, cm);
      String[] order = m.getOrigNames() != null ? m.getOrigNames() : m.getNames();
      List<String> names = new ArrayList<>();
      for (String n : order) if (cm.containsKey(n) && cm.get(n) < m.nfeatures()) names.add(n);
      StringJoiner in = new StringJoiner(",", "[", "]");
      for (String n : names) {
        int i = cm.get(n);
        boolean cat = dm != null ? dm.containsKey(i) : m.getDomainValues(i) != null;
        in.add("{\"name\":" + q(n) + ",\"index\":" + i + ",\"categorical\":" + cat + "}");
      }
      String contrib;
      try {
        contrib = "[" + String.join(",", Arrays.stream(wrapper(m, true).getContributionNames())
            .map(EncReference::q).toArray(String[]::new)) + "]";
      } catch (Exception ex) {
        contrib = q(ex.toString());
      }
      System.out.println("{\"encoding\":" + q(String.valueOf(e)) + ",\"nfeatures\":" + m.nfeatures()
          + ",\"offset\":" + q(m.getOffsetName()) + ",\"inputs\":" + in + ",\"contributions\":" + contrib + "}");
      return;
    }
    // contrib <mojo> <input.csv> <out.csv>: PredictCsv's row reading, contributions as hex floats
    EasyPredictModelWrapper w = wrapper(m, true);
    List<String> lines = Files.readAllLines(Paths.get(a[2]), StandardCharsets.UTF_8);
    String[] header = lines.get(0).split(",", -1);
    try (PrintWriter out = new PrintWriter(a[3], "UTF-8")) {
      out.println(String.join(",", w.getContributionNames()));
      for (String line : lines.subList(1, lines.size())) {
        String[] cells = line.split(",", -1);
        RowData row = new RowData();
        for (int i = 0; i < Math.min(header.length, cells.length); i++) {
          String v = cells[i];
          if (v.isEmpty() || v.equals("NA") || v.equals("N/A") || v.equals("-")) continue;
          row.put(header[i], v);
        }
        float[] c = w.predictContributions(row);
        StringJoiner j = new StringJoiner(",");
        for (float f : c) j.add(Double.toHexString(f));
        out.println(j);
      }
    }
  }
}
"""


def enc_features(rng, n):
    rows = []
    for _ in range(n):
        r = {"x1": num(rng.normal(0.0, 1.0)), "x2": num(rng.uniform(0.0, 10.0)),
             "color": COLORS[int(rng.integers(0, 4))],
             "city": CITIES[int(rng.choice(len(CITIES), p=CITY_P / CITY_P.sum()))],
             "grade": GRADES[int(rng.integers(0, len(GRADES)))]}
        for c, p in (("x1", 0.08), ("x2", 0.05), ("color", 0.06), ("city", 0.06), ("grade", 0.05)):
            if rng.random() < p:
                r[c] = None
        rows.append(r)
    return rows


def enc_lin(r):
    x1 = 0.0 if r["x1"] is None else r["x1"]
    x2 = 5.0 if r["x2"] is None else r["x2"]
    grade = 0.0 if r["grade"] is None else math.log(float(r["grade"]))
    return (1.1 * x1 - 0.2 * (x2 - 5.0) + COLOR_EFFECT[r["color"]]
            + CITY_EFFECT.get(r["city"], 0.0) + 0.5 * (grade - 1.0))


def enc_data(rng, n, kind):
    rows = enc_features(rng, n)
    for r in rows:
        s = enc_lin(r)
        if kind == "binomial":
            r["label"] = "yes" if rng.random() < 1.0 / (1.0 + math.exp(-s)) else "no"
        elif kind == "multinomial":
            z = np.array([s, -0.5 * s + (0.6 if r["city"] in CITIES[:4] else 0.0), 0.0])
            p = np.exp(z - z.max())
            r["species"] = ["setosa", "versicolor", "virginica"][int(rng.choice(3, p=p / p.sum()))]
        else:
            r["y"] = num(3.0 * s + 10.0 + rng.normal(0.0, 0.5))
        r["w"] = float(rng.integers(1, 4))
        r["off"] = num(rng.normal(0.0, 0.2))
        r["fold"] = float(rng.integers(0, 3))
    return rows


class EncGen:
    """Exports of the encoding models; inputs and references from genmodel."""

    def __init__(self, g):
        self.g = g
        self.classes = None

    def java(self):
        if self.classes is None:
            self.classes = os.path.join(self.g.work, "enc-classes")
            os.makedirs(self.classes, exist_ok=True)
            src = os.path.join(self.classes, "EncReference.java")
            with open(src, "w") as f:
                f.write(ENC_JAVA)
            subprocess.run(["javac", "-cp", self.g.jar, "-d", self.classes, src], check=True)
        return ["java", "-cp", self.g.jar + os.pathsep + self.classes, "EncReference"]

    def probe(self, zpath):
        r = subprocess.run(self.java() + ["inputs", zpath], capture_output=True, text=True, check=True)
        return json.loads(r.stdout.strip().splitlines()[-1])

    def repaired(self, name, zpath, info, cols):
        """A copy of the MOJO whose _orig_names (and _orig_domain_values_*) list only the
        predictors and the response: genmodel 3.46's OneHotExplicit and Binary column
        mappers count every name of _orig_names but the response as a predictor, so a
        weights, offset or fold column shifts every categorical (and PredictCsv dies with
        an ArrayIndexOutOfBoundsException). The copy is what H2O scores with."""
        n_features = int(info["n_features"])
        special = cols[n_features:len(cols) - 1]
        with zipfile.ZipFile(zpath) as z:
            entries = {n: z.read(n) for n in z.namelist()}
        orig = entries["_orig_names"].decode().splitlines()
        keep = [i for i, n in enumerate(orig) if n not in special]
        ini = entries["model.ini"].decode().splitlines()
        out_ini = []
        for line in ini:
            k = line.split("=")[0].strip()
            if k.startswith("_m_orig_domain_values_") or k in ("_n_orig_names", "_n_orig_domain_values"):
                continue
            out_ini.append(line)
            if k == "_genmodel_encoding":
                out_ini.append("_n_orig_names = %d" % len(keep))
                out_ini.append("_n_orig_domain_values = %d" % len(keep))
                for j, i in enumerate(keep):
                    out_ini.append("_m_orig_domain_values_%d = %s" % (j, re.search(
                        r"^_m_orig_domain_values_%d = (\d+)$" % i, "\n".join(ini), re.M).group(1)))
        files = {n: b for n, b in entries.items() if not n.startswith("_orig_domain_values_")}
        for j, i in enumerate(keep):
            old = "_orig_domain_values_%d" % i
            if old in entries:
                files["_orig_domain_values_%d" % j] = entries[old]
        files["_orig_names"] = ("\n".join(orig[i] for i in keep) + "\n").encode()
        files["model.ini"] = ("\n".join(out_ini) + "\n").encode()
        path = os.path.join(self.g.work, name + ".repaired.zip")
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
            for n, b in files.items():
                z.writestr(n, b)
        return path, special

    def encode_rows(self, rows, cols, domains, orig_domains):
        """The rows as the model's own (encoded) columns, for models whose MOJO carries no
        original columns (XGBoost, k-means, extended isolation forest): genmodel reads the
        encoded columns there. Mirrors H2O's training encoders (one-hot with a missing(NA)
        column, binary code of index + 1, label code (the level's integer value when the
        first level reads as one, else its index), top levels + "other"); a level unseen in
        training is missing, as H2O adapts it. Row 13 stays all missing."""
        out = []
        for k, r in enumerate(rows):
            e = {}
            for i, c in enumerate(cols):
                base, dot, tail = c.partition(".")
                if ":" in c:
                    base, bit = c.split(":")
                    d = orig_domains[base]
                    code = d.index(r[base]) + 1 if r[base] in d else 0
                    e[c] = float((code >> int(bit)) & 1)
                elif c in orig_domains and domains[i] is None:
                    d, lv = orig_domains[c], r[c]
                    if lv not in d:
                        e[c] = None
                    else:
                        e[c] = float(lv) if re.fullmatch(r"[-+]?\d+", d[0]) else float(d.index(lv))
                elif dot and tail.startswith("top_") and tail.endswith("_levels"):
                    lv = r[base]
                    known = lv is None or lv in domains[i] or lv not in orig_domains[base]
                    e[c] = lv if known else "other"
                elif dot and base in orig_domains:
                    lv, d = r[base], orig_domains[base]
                    e[c] = float(lv not in d) if tail == "missing(NA)" else float(lv == tail)
                else:
                    e[c] = r[c]
            out.append({c: (None if k == 13 else v) for c, v in e.items()})
        return out

    def export(self, name, model, score_rows, frame, offset):
        g = self.g
        tmp = model.download_mojo(path=g.work, get_genmodel_jar=True)
        zpath = os.path.join(g.out, name + ".zip")
        shutil.move(tmp, zpath)
        info, cols, domains = read_mojo_ini(zpath)
        supervised = info.get("supervised") == "true"
        note = None
        ref_zip = zpath
        n_features = int(info["n_features"])
        special = cols[n_features:len(cols) - (1 if supervised else 0)]
        if info.get("_genmodel_encoding") in ("OneHotExplicit", "Binary") and special:
            probe = self.probe(zpath)
            assert any(i["name"] in special for i in probe["inputs"]), probe
            tmp_in = os.path.join(g.work, name + ".check.csv")
            write_csv(tmp_in, ENC_FEAT + special, score_rows[:5])
            r = subprocess.run(["java", "-cp", g.jar, "hex.genmodel.tools.PredictCsv", "--mojo", zpath,
                                "--input", tmp_in, "--output", tmp_in + ".out"], capture_output=True, text=True)
            assert "ArrayIndexOutOfBoundsException" in r.stdout + r.stderr, (
                "genmodel scored %s: was its column mapping fixed?" % name)
            ref_zip, _ = self.repaired(name, zpath, info, cols)
            note = ("genmodel 3.46 cannot score this MOJO as exported: its %s column mapping counts "
                    "%s among the predictors (they are in _orig_names), misplaces every categorical and "
                    "PredictCsv dies with an ArrayIndexOutOfBoundsException. The references are "
                    "genmodel's on a copy whose _orig_names lists only the predictors and the response, "
                    "which is how H2O itself scores the model (compare with h2o.predict below)."
                    % (info["_genmodel_encoding"], ", ".join(special)))
        probe = self.probe(ref_zip)
        inputs = [{"name": i["name"], "type": "String" if i["categorical"] else "Float64"}
                  for i in probe["inputs"]]
        if probe["offset"] and probe["offset"] not in [i["name"] for i in inputs]:
            inputs.append({"name": probe["offset"], "type": "Float64"})
        in_cols = [i["name"] for i in inputs]
        orig_inputs = [{"name": c, "type": "String" if ENC_TYPES[c] == "enum" else "Float64"}
                       for c in ENC_FEAT + ([offset] if offset else [])]
        rows = score_rows
        if any(i["name"] not in ENC_FEAT + ["off"] or (i["name"] in ENC_CATS and i["type"] == "Float64")
               for i in inputs):
            orig_domains = {c: frame[c].levels()[0] for c in ENC_CATS}
            rows = self.encode_rows(score_rows, cols[:n_features], [domains.get(i) for i in range(n_features)],
                                    orig_domains)
        in_path = os.path.join(g.out, name + ".input.csv")
        write_csv(in_path, in_cols, rows)
        pred_path = os.path.join(g.out, name + ".predictions.csv")
        header, conv = g.reference(name, ref_zip, in_path, pred_path, [])
        entry = {
            "name": name, "mojo": name + ".zip", "input": name + ".input.csv",
            "predictions": name + ".predictions.csv", "algo": info.get("algo"),
            "algorithm": info.get("algorithm"), "category": info.get("category"),
            "supervised": supervised, "mojo_version": info.get("mojo_version"),
            "h2o_version": info.get("h2o_version"), "inputs": inputs, "outputs": header,
            "domains": {c: domains[i] for i, c in enumerate(cols[:n_features]) if i in domains},
            "n_rows": len(conv),
            "categorical_encoding": model.actual_params.get("categorical_encoding"),
            "genmodel_encoding": probe["encoding"],
        }
        if supervised:
            entry["response"] = cols[-1]
            entry["response_domain"] = domains.get(len(cols) - 1)
        if special:
            entry["not_inputs"] = special
        if isinstance(probe["contributions"], list):
            cfile = name + ".contributions.csv"
            self.contributions(name, ref_zip, in_path, os.path.join(g.out, cfile), probe, info["algo"])
            entry["contributions"] = cfile
        else:
            entry["contributions_refused"] = probe["contributions"]
        if note:
            entry["note"] = note
        g.expected.append(entry)
        cmp_path = in_path
        if rows is not score_rows:
            cmp_path = os.path.join(g.work, name + ".orig.input.csv")
            write_csv(cmp_path, [i["name"] for i in orig_inputs], score_rows)
        self.compare(name, model, cmp_path, orig_inputs, header, conv)
        g.sizes.append(name + ".zip")

    def compare(self, name, model, in_path, inputs, g_header, g_rows):
        """Sanity check against h2o.predict on the original columns: prints the rows that
        differ (genmodel leaves a missing categorical's encoded features missing where H2O
        encodes NA, and H2O's in-cluster scoring can fail where genmodel does not)."""
        types = {i["name"]: ("enum" if i["type"] == "String" else "real") for i in inputs}
        try:
            fr = h2o.upload_file(in_path, destination_frame=name + "_score", col_types=types, header=1)
            h = model.predict(fr).as_data_frame(use_pandas=False, header=True)
        except Exception as e:  # noqa: BLE001 -- a sanity check only
            print("   sanity vs h2o.predict: H2O cannot score the rows: %s"
                  % str(e).strip().splitlines()[0][:160])
            return
        differ = []
        for r, (gr, hr) in enumerate(zip(g_rows, h[1:])):
            for a, b in zip(gr[1:] if len(gr) > 1 else gr, hr[1:] if len(hr) > 1 else hr):
                try:
                    fa, fb = float(a), float(b)
                except ValueError:
                    continue
                if not (math.isnan(fa) and math.isnan(fb)) and abs(fa - fb) > 1e-9:
                    differ.append(r)
                    break
        print("   sanity vs h2o.predict: %s" % ("identical" if not differ else
                                                "rows %s differ" % differ))

    def contributions(self, name, zpath, in_path, out_path, probe, algo):
        g = self.g
        hex_path = os.path.join(g.work, name + ".contributions.hex.csv")
        subprocess.run(self.java() + ["contrib", zpath, in_path, hex_path], check=True)
        header, rows = read_csv(hex_path)
        assert header == probe["contributions"], (header, probe["contributions"])
        if algo != "drf":
            # PredictCsv computes the same floats where it can (not DRF: it loads no metadata)
            pc_path = os.path.join(g.work, name + ".contributions.predictcsv.csv")
            try:
                g.predict_csv(zpath, in_path, pc_path, ["--predictContributions"])
                ph, pr = read_csv(pc_path)
                assert (ph, pr) == (header, rows), name
                print("   contributions: PredictCsv agrees")
            except RuntimeError as e:
                print("   contributions: PredictCsv cannot (%s)" % str(e).splitlines()[-1][:120])
        with open(out_path, "w", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(header)
            w.writerows([[hex_to_repr(v) for v in r] for r in rows])


def run_encodings(g, step):
    rng = np.random.default_rng(SEED + ENC_SEED_OFFSET)
    eb = enc_data(rng, 300, "binomial")
    em = enc_data(rng, 360, "multinomial")
    er = enc_data(rng, 300, "regression")
    base = ENC_FEAT + ["w", "off", "fold"]
    feb = g.frame("enc_binom", eb, base + ["label"], ENC_TYPES)
    fem = g.frame("enc_multi", em, base + ["species"], ENC_TYPES)
    fer = g.frame("enc_reg", er, base + ["y"], ENC_TYPES)
    score = scoring_rows(enc_features(np.random.default_rng(SEED + ENC_SEED_OFFSET + 1), 30),
                         ENC_CATS, ["x1", "x2"])
    with_off = [dict(r, off=num(0.05 * (k % 7) - 0.15)) for k, r in enumerate(score)]
    e = EncGen(g)
    frames = {"binomial": (feb, "label"), "multinomial": (fem, "species"), "regression": (fer, "y")}
    trees = dict(ntrees=4, max_depth=3, seed=SEED)

    def model(algo, mid, enc, kind, **kw):
        fr, y = frames[kind]
        x = kw.pop("x", ENC_FEAT)
        if enc:
            kw["categorical_encoding"] = ENCODINGS[enc]
        if algo == "gbm":
            m = H2OGradientBoostingEstimator(model_id=mid, min_rows=5, **trees, **kw)
        elif algo == "drf":
            m = H2ORandomForestEstimator(model_id=mid, min_rows=5, **trees, **kw)
        elif algo == "xgboost":
            m = H2OXGBoostEstimator(model_id=mid, backend="cpu", **trees, **kw)
        elif algo == "deeplearning":
            m = H2ODeepLearningEstimator(model_id=mid, hidden=[4], epochs=3, reproducible=True, seed=SEED, **kw)
        elif algo == "kmeans":
            m = H2OKMeansEstimator(model_id=mid, k=3, seed=SEED, max_iterations=10, **kw)
        elif algo == "extended_isolation_forest":
            m = H2OExtendedIsolationForestEstimator(model_id=mid, ntrees=6, sample_size=64, extension_level=1,
                                                    seed=SEED, **kw)
        else:
            raise ValueError(algo)
        unsupervised = algo in ("kmeans", "extended_isolation_forest") or kw.get("autoencoder")
        m.train(x=x, y=None if unsupervised else y, training_frame=fr)
        return m, fr

    def add(name, algo, enc, kind, rows=score, **kw):
        def run():
            try:
                m, fr = model(algo, name, enc, kind, **kw)
                e.export(name, m, rows, fr, kw.get("offset_column"))
            except Exception:
                traceback.print_exc()
                raise
        step(name, run)

    # GBM and DRF: genmodel encodes the original columns (_orig_names) itself
    add("gbm_onehot_binomial", "gbm", "onehot", "binomial")
    add("gbm_binary_multinomial", "gbm", "binary", "multinomial")
    add("gbm_eigen_regression", "gbm", "eigen", "regression")
    add("gbm_label_encoder_binomial", "gbm", "label_encoder", "binomial")
    add("gbm_sort_by_response_binomial", "gbm", "sort_by_response", "binomial")
    add("gbm_enum_limited_regression", "gbm", "enum_limited", "regression")
    add("drf_onehot_regression", "drf", "onehot", "regression")
    add("drf_binary_binomial", "drf", "binary", "binomial")
    add("drf_eigen_binomial", "drf", "eigen", "binomial")
    add("drf_label_encoder_multinomial", "drf", "label_encoder", "multinomial")
    add("drf_sort_by_response_regression", "drf", "sort_by_response", "regression")
    add("drf_enum_limited_binomial", "drf", "enum_limited", "binomial")
    # XGBoost (Eigen: H2O refuses to train it): the MOJO has no original columns, genmodel
    # reads the encoded ones
    add("xgboost_onehot_binomial", "xgboost", "onehot", "binomial")
    add("xgboost_binary_regression", "xgboost", "binary", "regression")
    add("xgboost_label_encoder_binomial", "xgboost", "label_encoder", "binomial")
    add("xgboost_sort_by_response_multinomial", "xgboost", "sort_by_response", "multinomial")
    add("xgboost_enum_limited_binomial", "xgboost", "enum_limited", "binomial")
    # Deep Learning writes Binary, Eigen and LabelEncoder for genmodel (OneHotExplicit is
    # refused at training, EnumLimited exports a MOJO genmodel cannot load)
    add("deeplearning_binary_binomial", "deeplearning", "binary", "binomial")
    add("deeplearning_eigen_regression", "deeplearning", "eigen", "regression")
    add("deeplearning_label_encoder_multinomial", "deeplearning", "label_encoder", "multinomial")
    add("deeplearning_sort_by_response_binomial", "deeplearning", "sort_by_response", "binomial")
    add("deeplearning_autoencoder_binary", "deeplearning", "binary", "binomial", autoencoder=True)
    # unsupervised models with an encoding: encoded columns, as for XGBoost
    add("kmeans_binary", "kmeans", "binary", "binomial")
    add("extended_isolation_forest_onehot", "extended_isolation_forest", "onehot", "binomial")
    # weights, offset and fold columns: never inputs but the offset
    add("gbm_weights_binomial", "gbm", None, "binomial", weights_column="w", x=ENC_FEAT + ["w"])
    add("drf_fold_column_regression", "drf", None, "regression", fold_column="fold", x=ENC_FEAT + ["fold"])
    add("gbm_onehot_weights_offset", "gbm", "onehot", "regression", rows=with_off,
        weights_column="w", offset_column="off", x=ENC_FEAT + ["w", "off"])


# ----------------------------------------------------------------------------
# GLM ordinal, GAM and CoxPH
# ----------------------------------------------------------------------------
# A client does not send these models their [columns]: a GAM takes its original
# predictors (genmodel's EasyPredictModelWrapper computes the spline columns from them), a
# CoxPH model its stratum columns and features (never the start/stop/event or __strata
# columns, nor the interaction columns genmodel computes), and both the offset column
# when the model has one. The names come from genmodel itself: GenmodelInputs (below)
# loads the MOJO and prints the columns the wrapper and the scorer read.

GAM_COXPH_SEED = SEED + 1500  # this section's own random streams: SEED+1500 (training), +1501 (scoring)
RATINGS = ["low", "medium", "top"]  # sorted, so the domain order is the ordinal order
GROUPS = ["g1", "g2"]
SITES = ["s1", "s2", "s3"]

GENMODEL_INPUTS_JAVA = r"""
import hex.genmodel.MojoModel;
import java.lang.reflect.Field;
import java.util.*;

/** Prints the columns genmodel reads to score a row of a MOJO, one "name<TAB>type" a line:
 *  GAM: the features before the expanded spline columns, then the GAM predictors
 *  (_gam_columns, which the wrapper reads from the row); CoxPH: the stratum columns and
 *  features (_strata_len + _cats + _nums of [columns]) minus the interaction columns it
 *  computes (_interaction_targets); others: the n_features features. Then the offset. */
public class GenmodelInputs {
  static Object field(Object o, String name) throws Exception {
    for (Class<?> c = o.getClass(); c != null; c = c.getSuperclass()) {
      try {
        Field f = c.getDeclaredField(name);
        f.setAccessible(true);
        return f.get(o);
      } catch (NoSuchFieldException e) {
        // declared further up
      }
    }
    throw new NoSuchFieldException(name);
  }

  public static void main(String[] a) throws Exception {
    MojoModel m = MojoModel.load(a[0]);
    String[] names = m.getNames();
    LinkedHashMap<String, Boolean> cols = new LinkedHashMap<>();  // name -> has a domain
    String cls = m.getClass().getSimpleName();
    if (cls.startsWith("GamMojo")) {
      int expanded = (Integer) field(m, "_numExpandedGamColsCenter");
      for (int i = 0; i < m.nfeatures() - expanded; i++) cols.put(names[i], m.getDomainValues(i) != null);
      for (String[] group : (String[][]) field(m, "_gam_columns"))
        for (String c : group) cols.putIfAbsent(c, false);
    } else if (cls.equals("CoxPHMojoModel")) {
      int strata = (Integer) field(m, "_strata_len");
      int cats = (Integer) field(m, "_cats");
      int nums = (Integer) field(m, "_nums");
      if (nums < 0) nums = ((double[]) field(m, "_coef")).length - ((int[]) field(m, "_cat_offsets"))[cats];
      Set<Integer> computed = new HashSet<>();
      int[] targets = (int[]) field(m, "_interaction_targets");
      if (targets != null) for (int t : targets) computed.add(t);
      for (int i = 0; i < strata + cats + nums; i++)
        if (!computed.contains(i)) cols.put(names[i], m.getDomainValues(i) != null);
    } else {
      for (int i = 0; i < m.nfeatures(); i++) cols.put(names[i], m.getDomainValues(i) != null);
    }
    if (m.getOffsetName() != null) cols.putIfAbsent(m.getOffsetName(), false);
    for (Map.Entry<String, Boolean> e : cols.entrySet())
      System.out.println(e.getKey() + "\t" + (e.getValue() ? "String" : "Float64"));
  }
}
"""


def genmodel_inputs(g, zpath):
    """The input columns of a MOJO as genmodel reads them ([{"name", "type"}])."""
    if not getattr(g, "inputs_driver", False):
        src = os.path.join(g.work, "GenmodelInputs.java")
        with open(src, "w") as f:
            f.write(GENMODEL_INPUTS_JAVA)
        subprocess.run(["javac", "-cp", g.jar, "-d", g.work, src], check=True)
        g.inputs_driver = True
    out = subprocess.run(["java", "-cp", g.jar + os.pathsep + g.work, "GenmodelInputs", zpath],
                         check=True, capture_output=True, text=True).stdout
    return [dict(zip(("name", "type"), line.split("\t"))) for line in out.splitlines() if line]


def export_genmodel_inputs(g, name, model, rows, note):
    """g.export for models whose input columns are not their [columns]: the input CSV and
    the expected.json entry use genmodel's inputs (genmodel_inputs)."""
    tmp = model.download_mojo(path=g.work, get_genmodel_jar=True)
    zpath = os.path.join(g.out, name + ".zip")
    shutil.move(tmp, zpath)
    info, cols, domains = read_mojo_ini(zpath)
    inputs = genmodel_inputs(g, zpath)
    in_cols = [i["name"] for i in inputs]
    in_path = os.path.join(g.out, name + ".input.csv")
    write_csv(in_path, in_cols, rows)
    header, conv = g.reference(name, zpath, in_path, os.path.join(g.out, name + ".predictions.csv"), [])
    at = {c: i for i, c in enumerate(cols)}
    g.expected.append({
        "name": name, "mojo": name + ".zip", "input": name + ".input.csv",
        "predictions": name + ".predictions.csv", "algo": info.get("algo"),
        "algorithm": info.get("algorithm"), "category": info.get("category"),
        "supervised": info.get("supervised") == "true", "mojo_version": info.get("mojo_version"),
        "h2o_version": info.get("h2o_version"), "inputs": inputs, "outputs": header,
        "domains": {c: domains[at[c]] for c in in_cols if at.get(c) in domains},
        "n_rows": len(conv), "response": cols[-1], "response_domain": domains.get(len(cols) - 1),
        "note": note,
    })
    try:
        if header == ["lp"]:
            lp_sanity(name, model, in_path, inputs, conv)
        else:
            g.compare(name, model, in_path, inputs, header, conv)
    except Exception as e:  # noqa: BLE001 -- a sanity check only
        print("   sanity vs h2o.predict not available: %s" % str(e).strip().splitlines()[0])
    g.sizes.append(name + ".zip")


def lp_sanity(name, model, in_path, inputs, conv):
    """g.compare for CoxPH, whose h2o.predict rows come back empty where lp is NA."""
    types = {i["name"]: ("enum" if i["type"] == "String" else "real") for i in inputs}
    fr = h2o.upload_file(in_path, destination_frame=name + "_score", col_types=types, header=1)
    h_rows = model.predict(fr).as_data_frame(use_pandas=False, header=True)[1:]
    maxdiff, na_mismatch = 0.0, 0
    for (a,), hr in zip(conv, h_rows):
        b = hr[0] if hr else ""
        if (a == "NA") != (b in ("", "NA", "nan")):
            na_mismatch += 1
        elif a != "NA":
            maxdiff = max(maxdiff, abs(float(a) - float(b)))
    print("   sanity vs h2o.predict: lp max|diff|=%.3g rows NA on one side only=%d" % (maxdiff, na_mismatch))


def gam_data(rng, n):
    """age (18-80), score (~N(50,12)), dose (0-5), x3 (count), color (~8% NA); responses y
    (real, non-linear in age, score and dose), label (no/yes), species (3 classes) and
    rating (low < medium < top)."""
    rows = []
    for _ in range(n):
        r = {"age": num(rng.uniform(18.0, 80.0), 2), "score": num(rng.normal(50.0, 12.0), 2),
             "dose": num(rng.uniform(0.0, 5.0), 2), "x3": float(rng.poisson(3.0)),
             "color": COLORS[int(rng.integers(0, 4))]}
        if rng.random() < 0.08:
            r["color"] = None
        f = (2.0 * math.sin(r["age"] / 9.0) + 0.004 * (r["score"] - 50.0) ** 2 + 0.6 * math.sqrt(r["dose"])
             + 0.2 * r["x3"] + COLOR_EFFECT[r["color"]])
        r["y"] = num(f + rng.normal(0.0, 0.3))
        r["label"] = "yes" if rng.random() < 1.0 / (1.0 + math.exp(-(f - 1.5))) else "no"
        s = np.array([f - 1.5, 0.5 * math.cos(r["age"] / 7.0), 0.05 * (r["score"] - 50.0)])
        p = np.exp(s - s.max())
        r["species"] = ["setosa", "versicolor", "virginica"][int(rng.choice(3, p=p / p.sum()))]
        z = f + rng.logistic(0.0, 0.5)
        r["rating"] = RATINGS[0] if z < 1.0 else RATINGS[1] if z < 2.5 else RATINGS[2]
        rows.append(r)
    return rows


def gam_scoring_rows(rng):
    """30 rows with the usual gaps (scoring_rows) and predictors beyond the knots."""
    rows = [{k: r[k] for k in ("age", "score", "dose", "x3", "color")} for r in gam_data(rng, 30)]
    rows = scoring_rows(rows, ["color"], ["age", "score", "dose", "x3"])
    rows[24].update(age=5.0, score=-20.0, dose=9.5)    # below / beyond every knot range
    rows[25].update(age=99.0, score=120.0, dose=-1.0)
    rows[26].update(age=18.0, score=None)               # on the first age knot, score missing
    rows[27].update(dose=None)
    return rows


def survival_data(rng, n):
    """age, score, color (~5% NA), grp, site; off (offset), start < stop, event (0/1)."""
    rows = []
    for i in range(n):
        r = {"age": num(rng.uniform(30.0, 80.0), 2), "score": num(rng.normal(50.0, 10.0), 2),
             "color": COLORS[int(rng.integers(0, 3))], "grp": GROUPS[i % 2], "site": SITES[(i // 2) % 3],
             "off": num(rng.normal(0.0, 0.2))}
        if rng.random() < 0.05:
            r["color"] = None
        risk = (0.03 * (r["age"] - 55.0) - 0.02 * (r["score"] - 50.0) + COLOR_EFFECT[r["color"]] * 0.5
                + (0.4 if r["grp"] == "g2" else 0.0) + r["off"])
        r["start"] = num(rng.uniform(0.0, 2.0))
        r["stop"] = num(r["start"] + rng.exponential(10.0 * math.exp(-risk)) + 0.01)
        r["event"] = int(rng.random() < 0.75)
        rows.append(r)
    return rows


def survival_scoring_rows(rng, offset=False):
    cols = ("age", "score", "color", "grp", "site", "off")
    rows = [{k: r[k] for k in cols} for r in survival_data(rng, 30)]
    rows = scoring_rows(rows, ["color", "grp"], ["age", "score"])
    rows[11]["site"] = None        # a missing stratum level counts as level 0 in genmodel
    rows[19]["site"] = "s9"        # so does an unseen one
    if offset:  # PredictCsv cannot score a row without its offset (parseDouble(null))
        for r, src in zip(rows, survival_data(np.random.default_rng(GAM_COXPH_SEED + 2), 30)):
            r["off"] = src["off"]
    return rows


def ordinal_gam_coxph(g, step):
    rng = np.random.default_rng(GAM_COXPH_SEED)
    score_rng = np.random.default_rng(GAM_COXPH_SEED + 1)
    types = {"age": "real", "score": "real", "dose": "real", "x3": "real", "color": "enum", "y": "real",
             "label": "enum", "species": "enum", "rating": "enum", "grp": "enum", "site": "enum",
             "off": "real", "start": "real", "stop": "real", "event": "int"}
    gam_cols = ["age", "score", "dose", "x3", "color"]
    fg = g.frame("gamdata", gam_data(rng, 400), gam_cols + ["y", "label", "species", "rating"], types)
    surv_cols = ["age", "score", "color", "grp", "site", "off", "start", "stop", "event"]
    fs = g.frame("survdata", survival_data(rng, 300), surv_cols, types)
    score_gam = gam_scoring_rows(score_rng)
    score_surv = survival_scoring_rows(score_rng)
    score_surv_off = survival_scoring_rows(score_rng, offset=True)

    def gam(name, y, x, note, **kw):
        m = H2OGeneralizedAdditiveEstimator(model_id=name, seed=SEED, lambda_=1e-4, **kw)
        m.train(x=x, y=y, training_frame=fg)
        export_genmodel_inputs(g, name, m, score_gam, note)

    def cox(name, x, note, rows=score_surv, **kw):
        m = H2OCoxProportionalHazardsEstimator(model_id=name, stop_column="stop", **kw)
        m.train(x=x, y="event", training_frame=fs)
        export_genmodel_inputs(g, name, m, rows, note)

    def glm_ordinal():
        m = H2OGeneralizedLinearEstimator(model_id="glm_ordinal", family="ordinal", lambda_=1e-4, seed=SEED)
        m.train(x=gam_cols, y="rating", training_frame=fg)
        export_genmodel_inputs(g, "glm_ordinal", m, score_gam, "ordinal family (category Ordinal)")
    step("glm_ordinal", glm_ordinal)

    step("gam_cubic", lambda: gam(
        "gam_cubic", "y", ["age", "score", "x3", "color"], "cubic regression spline (bs=0) on age, which is "
        "also a linear predictor", family="gaussian", gam_columns=["age"], bs=[0], num_knots=[6]))
    step("gam_thin_plate", lambda: gam(
        "gam_thin_plate", "y", ["score", "x3", "color"], "thin plate spline (bs=1) on age",
        family="gaussian", gam_columns=["age"], bs=[1], num_knots=[6]))
    step("gam_ispline", lambda: gam(
        "gam_ispline", "y", ["score", "x3", "color"], "monotone I-spline (bs=2, order 3) on dose",
        family="gaussian", gam_columns=["dose"], bs=[2], num_knots=[5], spline_orders=[3], non_negative=True))
    step("gam_mspline", lambda: gam(
        "gam_mspline", "y", ["score", "x3", "color"], "M-spline (bs=3, order 3) on age",
        family="gaussian", gam_columns=["age"], bs=[3], num_knots=[6], spline_orders=[3]))
    step("gam_several", lambda: gam(
        "gam_several", "y", ["x3", "color"], "cubic splines on age and dose, a thin plate spline over age and "
        "score", family="gaussian", gam_columns=[["age"], ["dose"], ["age", "score"]], bs=[0, 0, 1],
        num_knots=[5, 4, 7]))
    step("gam_binomial", lambda: gam(
        "gam_binomial", "label", ["x3", "color"], "every spline type: cubic (age), I-spline (dose), M-spline "
        "(score), thin plate (age); genmodel 3.46 lays out the columns after an I- or M-spline as "
        "num_knots-1 wide and gives the M-spline the first GAM column's centering matrix, and its "
        "predictions are the reference (a thin plate over two columns next to an I- or M-spline "
        "cannot be scored by genmodel 3.46)",
        family="binomial", gam_columns=[["age"], ["dose"], ["score"], ["age"]], bs=[0, 2, 3, 1],
        num_knots=[7, 4, 5, 6], spline_orders=[1, 2, 3, 1]))
    step("gam_multinomial", lambda: gam(
        "gam_multinomial", "species", ["dose", "x3", "color"], "cubic spline on age, thin plate on score",
        family="multinomial", gam_columns=["age", "score"], bs=[0, 1], num_knots=[5, 5]))
    step("gam_ordinal", lambda: gam(
        "gam_ordinal", "rating", ["dose", "x3", "color"], "ordinal family, cubic spline on age",
        family="ordinal", gam_columns=["age"], bs=[0], num_knots=[5]))

    feats = ["age", "score", "color"]
    step("coxph", lambda: cox("coxph", feats, "ties efron, no strata"))
    step("coxph_breslow", lambda: cox("coxph_breslow", feats, "ties breslow", ties="breslow"))
    step("coxph_stratified", lambda: cox(
        "coxph_stratified", feats + ["grp", "site"], "stratified by grp and site", stratify_by=["grp", "site"]))
    step("coxph_offset", lambda: cox(
        "coxph_offset", feats, "start and stop columns, offset column off", rows=score_surv_off,
        start_column="start", offset_column="off"))
    step("coxph_interactions", lambda: cox(
        "coxph_interactions", feats + ["grp"], "interaction pairs num x num, enum x num, enum x enum",
        interaction_pairs=[("age", "score"), ("color", "age"), ("color", "grp")]))


# ----------------------------------------------------------------------------
# issue 15: RuleFit, isotonic regression, Uplift DRF, Target Encoder, Word2Vec with
# blank lines. Everything here draws from its own stream (SEED + MORE_SEED_OFFSET) and
# uploads its frames after all the others, so the models above stay reproducible.
# ----------------------------------------------------------------------------

MORE_SEED_OFFSET = 7151
SIZES = ["S", "M", "L"]

WRAPPER_JAVA = r"""
import au.com.bytecode.opencsv.CSVReader;
import hex.ModelCategory;
import hex.genmodel.MojoModel;
import hex.genmodel.algos.targetencoder.ColumnsMapping;
import hex.genmodel.algos.targetencoder.TargetEncoderMojoModel;
import hex.genmodel.easy.EasyPredictModelWrapper;
import hex.genmodel.easy.RowData;
import java.io.*;
import java.util.*;

/**
 * genmodel's EasyPredictModelWrapper on a MOJO, for what PredictCsv does not print.
 *   info MOJO INPUTS CONTRIB: the columns the wrapper reads (RowToRawDataConverter fills
 *     the raw row below nfeatures(); "String" when the column has a domain), and whether
 *     the wrapper gives contributions ("yes", or the exception it throws).
 *   predict MOJO INPUT.csv OUT.csv: Uplift (predictUpliftBinomial) and Target Encoder
 *     (predictTargetEncoding) outputs, every double as Double.toHexString; the rows are
 *     read as PredictCsv reads them (opencsv; "", NA, N/A and - left out of the row) and
 *     the wrapper is configured as PredictCsv configures it.
 */
public class WrapperPredict {
  static EasyPredictModelWrapper.Config config(MojoModel m) {
    return new EasyPredictModelWrapper.Config().setModel(m).setConvertUnknownCategoricalLevelsToNa(true);
  }

  public static void main(String[] a) throws Exception {
    MojoModel m = MojoModel.load(a[1]);
    if (a[0].equals("info")) {
      PrintWriter pw = new PrintWriter(new FileWriter(a[2]));
      String[] names = m.getNames();
      for (int i = 0; i < m.nfeatures(); i++)
        pw.println((m.getDomainValues(i) != null ? "String" : "Float64") + "," + names[i]);
      pw.close();
      pw = new PrintWriter(new FileWriter(a[3]));
      try {
        new EasyPredictModelWrapper(config(m).setEnableContributions(true));
        pw.println("yes");
      } catch (Exception e) {
        pw.println(e.getClass().getSimpleName() + ": " + e.getMessage());
      }
      pw.close();
      return;
    }
    EasyPredictModelWrapper w = new EasyPredictModelWrapper(config(m));
    ModelCategory c = m.getModelCategory();
    List<String> header = new ArrayList<>();
    if (c == ModelCategory.TargetEncoder) {
      for (ColumnsMapping cm : ((TargetEncoderMojoModel) m)._inoutMapping) header.addAll(Arrays.asList(cm.to()));
    } else {
      header.addAll(Arrays.asList(m.getOutputNames()));
    }
    CSVReader r = new CSVReader(new FileReader(a[2]));
    String[] cols = r.readNext();
    PrintWriter pw = new PrintWriter(new FileWriter(a[3]));
    pw.println(String.join(",", header));
    String[] cells;
    while ((cells = r.readNext()) != null) {
      RowData row = new RowData();
      for (int i = 0; i < Math.min(cols.length, cells.length); i++) {
        String v = cells[i];
        if (v.isEmpty() || v.equals("NA") || v.equals("N/A") || v.equals("-")) continue;
        row.put(cols[i], v);
      }
      double[] p;
      if (c == ModelCategory.TargetEncoder) p = w.predictTargetEncoding(row).transformations;
      else if (c == ModelCategory.BinomialUplift) p = w.predictUpliftBinomial(row).predictions;
      else throw new RuntimeException("PredictCsv scores " + c);
      if (p.length != header.size()) throw new RuntimeException(p.length + " values for " + header);
      StringBuilder sb = new StringBuilder();
      for (int i = 0; i < p.length; i++) {
        if (i > 0) sb.append(',');
        sb.append(Double.isNaN(p[i]) ? "NA" : Double.toHexString(p[i]));
      }
      pw.println(sb);
    }
    pw.close();
  }
}
"""


def wrapper_java(g, *args):
    """Runs WrapperPredict (compiled once per run) against genmodel."""
    if not getattr(g, "_wrapper_compiled", False):
        src = os.path.join(g.work, "WrapperPredict.java")
        with open(src, "w") as f:
            f.write(WRAPPER_JAVA)
        subprocess.run(["javac", "-cp", g.jar, "-d", g.work, src], check=True)
        g._wrapper_compiled = True
    r = subprocess.run(["java", "-cp", g.jar + os.pathsep + g.work, "WrapperPredict"] + list(args),
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("WrapperPredict %s failed:\n%s\n%s" % (args, r.stdout, r.stderr))


def wrapper_info(g, name, zpath):
    """(inputs, contributions): the columns genmodel's row API reads, as expected.json lists
    them, and "yes" or genmodel's refusal of contributions."""
    inputs_path = os.path.join(g.work, name + ".wrapper-inputs.txt")
    contrib_path = os.path.join(g.work, name + ".wrapper-contrib.txt")
    wrapper_java(g, "info", zpath, inputs_path, contrib_path)
    inputs = []
    with open(inputs_path) as f:
        for line in f.read().splitlines():
            ty, _, col = line.partition(",")
            inputs.append({"name": col, "type": ty})
    with open(contrib_path) as f:
        contrib = f.read().strip()
    return inputs, contrib


def note_contributions(g, name, contrib):
    """Records genmodel's refusal of contributions in the model's expected.json entry."""
    assert contrib != "yes", "%s: genmodel has contributions; write them as <name>.contributions.csv" % name
    print("   genmodel's contributions: %s" % contrib)
    g.expected[-1]["no_contributions"] = contrib


def export_predictcsv(g, name, model, rows):
    """g.export (PredictCsv reference), with the inputs checked against the columns
    genmodel's wrapper reads and its refusal of contributions recorded."""
    g.export(name, model, rows)
    if not g.expected or g.expected[-1]["name"] != name:
        return  # export failed and said so
    inputs, contrib = wrapper_info(g, name, os.path.join(g.out, name + ".zip"))
    assert inputs == g.expected[-1]["inputs"], (name, inputs, g.expected[-1]["inputs"])
    note_contributions(g, name, contrib)


def export_wrapper(g, name, model, rows, check, note=None):
    """Exports a MOJO whose category PredictCsv refuses (Uplift, Target Encoder): the inputs
    and the reference come from WrapperPredict. `model` is a trained model, or the path of
    a MOJO already in place; `check(in_path, header, rows)` compares with the cluster."""
    zpath = os.path.join(g.out, name + ".zip")
    if isinstance(model, str):
        assert model == zpath, (model, zpath)
    else:
        shutil.move(model.download_mojo(path=g.work, get_genmodel_jar=True), zpath)
    info, cols, domains = read_mojo_ini(zpath)
    inputs, contrib = wrapper_info(g, name, zpath)
    in_cols = [i["name"] for i in inputs]
    in_path = os.path.join(g.out, name + ".input.csv")
    write_csv(in_path, in_cols, rows)
    hex_path = os.path.join(g.work, name + ".predictions.hex.csv")
    wrapper_java(g, "predict", zpath, in_path, hex_path)
    header, hex_rows = read_csv(hex_path)
    conv = [[hex_to_repr(v) for v in r] for r in hex_rows]
    assert len(conv) == len(rows), (name, len(conv), len(rows))
    with open(os.path.join(g.out, name + ".predictions.csv"), "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows(conv)
    supervised = info.get("supervised") == "true"
    entry = {
        "name": name, "mojo": name + ".zip", "input": name + ".input.csv",
        "predictions": name + ".predictions.csv", "algo": info.get("algo"),
        "algorithm": info.get("algorithm"), "category": info.get("category"),
        "supervised": supervised, "mojo_version": info.get("mojo_version"),
        "h2o_version": info.get("h2o_version"), "inputs": inputs, "outputs": header,
        "domains": {c: domains[i] for i, c in enumerate(cols) if i in domains and c in in_cols},
        "n_rows": len(conv),
        "note": (note + "; " if note else "") + "PredictCsv refuses this category: inputs and "
                "reference from genmodel's EasyPredictModelWrapper (WrapperPredict in generate.py)",
    }
    if supervised:
        entry["response"] = cols[-1]
        entry["response_domain"] = domains.get(len(cols) - 1)
    g.expected.append(entry)
    note_contributions(g, name, contrib)
    check(in_path, header, conv)
    g.sizes.append(name + ".zip")


def max_diff(want_rows, got_rows):
    """Largest |a - b| over cells both sides give as numbers, and the cells where one
    side is NA and the other not."""
    md, na = 0.0, 0
    for a_row, b_row in zip(want_rows, got_rows):
        for a, b in zip(a_row, b_row):
            a_na = a in ("", "NA", "nan") or a is None
            b_na = b in ("", "NA", "nan") or b is None
            if a_na or b_na:
                na += a_na != b_na
                continue
            md = max(md, abs(float(a) - float(b)))
    return md, na


def te_rows(rng, n):
    """make_features plus `size` (S/M/L, ~6 % NA) and three responses."""
    rows = make_features(rng, n)
    size_effect = {"S": -0.7, "M": 0.1, "L": 0.9, None: 0.0}
    for r in rows:
        r["size"] = None if rng.random() < 0.06 else SIZES[int(rng.integers(0, 3))]
        s = lin(r) + size_effect[r["size"]]
        r["label"] = "yes" if rng.random() < 1.0 / (1.0 + math.exp(-s)) else "no"
        r["species"] = ["setosa", "versicolor", "virginica"][int(rng.integers(0, 3))] \
            if rng.random() < 0.4 else ("setosa" if s < -0.5 else "versicolor" if s < 0.8 else "virginica")
        r["y"] = num(3.0 * s + 10.0 + rng.normal(0.0, 0.5))
    return rows


def uplift_rows(rng, n):
    """make_features plus a treatment column and a response whose odds the treatment
    raises for large x2 and red or blue rows, and lowers for small x2."""
    rows = make_features(rng, n)
    for r in rows:
        treated = rng.random() < 0.5
        r["treat"] = "treatment" if treated else "control"
        x2 = 5.0 if r["x2"] is None else r["x2"]
        effect = 0.6 * (x2 - 5.0) + (1.0 if r["color"] in ("red", "blue") else -0.5)
        s = 0.5 * lin(r) + (effect if treated else 0.0)
        r["label"] = "yes" if rng.random() < 1.0 / (1.0 + math.exp(-s)) else "no"
    return rows


def isotonic_rows(rng, n):
    rows = []
    for _ in range(n):
        x = num(rng.uniform(0.0, 10.0))
        rows.append({"x": x, "y": num(2.0 * math.tanh(x - 5.0) + rng.normal(0.0, 0.4))})
    return rows


def more_algos(g, step, score_mixed):
    from h2o.estimators import (H2ORuleFitEstimator, H2OIsotonicRegressionEstimator,
                                H2OUpliftRandomForestEstimator, H2OTargetEncoderEstimator)
    rng = np.random.default_rng(SEED + MORE_SEED_OFFSET)
    types = dict(TYPES, size="enum", treat="enum", x="real")
    # 150 rows: a binomial GLM's metrics (in modelDetails.json) grow with the rows
    rf_data = {"binomial": (binomial_data(rng, 150), "label"),
               "multinomial": (multinomial_data(rng, 150), "species"),
               "regression": (regression_data(rng, 150), "y")}
    rf_frames = {k: g.frame("rulefit_" + k, rows, FEAT + [y], types) for k, (rows, y) in rf_data.items()}
    iso = isotonic_rows(rng, 200)
    iso_random = [num(v) for v in rng.uniform(-0.5, 10.5, size=20)]
    f_iso = g.frame("isotonic", iso, ["x", "y"], types)
    upl = uplift_rows(rng, 600)
    f_upl = g.frame("uplift", upl, FEAT + ["treat", "label"], types)
    te = te_rows(rng, 400)
    f_te = g.frame("target_encoder", te, ["color", "size", "x1", "label", "species", "y"], types)
    te_score = scoring_rows(te_rows(rng, 30), ["color", "size"], ["x1"])
    words = word2vec_data(rng, 30)

    # ---------------- RuleFit: every model type, for each category
    def rulefit(category, model_type):
        name = "rulefit_%s_%s" % (category, model_type)
        y = rf_data[category][1]
        m = H2ORuleFitEstimator(model_id=name, model_type=model_type, min_rule_length=1, max_rule_length=2,
                                rule_generation_ntrees=3, seed=SEED)
        m.train(x=FEAT, y=y, training_frame=rf_frames[category])
        export_predictcsv(g, name, m, score_mixed)
    for category in ("binomial", "multinomial", "regression"):
        for model_type in ("rules_and_linear", "rules", "linear"):
            name = "rulefit_%s_%s" % (category, model_type)
            step(name, lambda c=category, t=model_type: rulefit(c, t))

    # ---------------- isotonic regression (genmodel clips out-of-range x whatever
    # out_of_bounds says; the cluster gives NA for them when out_of_bounds = "NA")
    def isotonic(name, **kw):
        m = H2OIsotonicRegressionEstimator(model_id=name, **kw)
        m.train(x=["x"], y="y", training_frame=f_iso)
        # missing, below and above the range, its ends, thresholds hit exactly, midpoints.
        # Missing is "NA": PredictCsv's CSV reader takes a lone "" for a quote character.
        tx = m._model_json["output"]["thresholds_x"]
        xs = ["NA", -1.5, tx[0], tx[-1], 12.0, tx[1], tx[len(tx) // 2], tx[-2]]
        xs += [num((a + b) / 2.0) for a, b in list(zip(tx, tx[1:]))[:8]]
        rows = [{"x": v} for v in (xs + iso_random)[:29]] + [{"x": "NA"}]
        export_predictcsv(g, name, m, rows)
    step("isotonic_regression", lambda: isotonic("isotonic_regression"))
    step("isotonic_regression_clip", lambda: isotonic("isotonic_regression_clip", out_of_bounds="clip"))

    # ---------------- Uplift DRF (PredictCsv refuses BinomialUplift)
    def uplift():
        m = H2OUpliftRandomForestEstimator(model_id="uplift_drf", ntrees=5, max_depth=4, min_rows=5,
                                           sample_rate=0.8, treatment_column="treat", uplift_metric="KL",
                                           seed=SEED)
        m.train(x=FEAT, y="label", training_frame=f_upl)

        def check(in_path, header, rows):
            fr = h2o.upload_file(in_path, destination_frame="uplift_drf_score",
                                 col_types={"x1": "real", "x2": "real", "x3": "real", "color": "enum"}, header=1)
            got = m.predict(fr).as_data_frame(use_pandas=False, header=True)
            idx = [got[0].index(h) for h in header]
            md, na = max_diff(rows, [[r[i] for i in idx] for r in got[1:]])
            print("   sanity vs h2o.predict: max|diff|=%.3g, NA on one side only: %d" % (md, na))
        export_wrapper(g, "uplift_drf", m, score_mixed, check)
    step("uplift_drf", uplift)

    # ---------------- Target Encoder (PredictCsv refuses TargetEncoder; noise is applied
    # to training data in the cluster only, the MOJO has no noise)
    def target_encoder(name, y, **kw):
        m = H2OTargetEncoderEstimator(model_id=name, seed=SEED, **kw)
        m.train(x=["color", "size", "x1"], y=y, training_frame=f_te)

        def check(in_path, header, rows):
            types = {"color": "enum", "size": "enum", "x1": "real"}
            with open(in_path) as f:
                cols = f.readline().strip().split(",")
            fr = h2o.upload_file(in_path, destination_frame=name + "_score",
                                 col_types={c: types[c] for c in cols}, header=1)
            # noise=0: the cluster adds the model's noise even to non-training frames;
            # the MOJO has no noise
            got = m.transform(fr, as_training=False, noise=0.0).as_data_frame(use_pandas=False, header=True)
            for j, h in enumerate(header):
                i = got[0].index(h)
                md, na = max_diff([[r[j]] for r in rows], [[r[i]] for r in got[1:]])
                print("   sanity vs h2o transform, %s: max|diff|=%.3g, NA on one side only: %d" % (h, md, na))
        export_wrapper(g, name, m, te_score, check)
    step("target_encoder_binomial", lambda: target_encoder(
        "target_encoder_binomial", "label", noise=0.0))
    step("target_encoder_binomial_blending", lambda: target_encoder(
        "target_encoder_binomial_blending", "label", blending=True, inflection_point=3.0, smoothing=2.0,
        noise=0.05, columns_to_encode=[["color"], ["size"], ["color", "size"]]))
    step("target_encoder_multinomial", lambda: target_encoder(
        "target_encoder_multinomial", "species", blending=True, inflection_point=5.0, smoothing=4.0))
    step("target_encoder_regression", lambda: target_encoder(
        "target_encoder_regression", "y", noise=0.0, columns_to_encode=[["size"], ["color", "size"]]))

    # A MOJO as h2o 3.26-3.32 wrote them, without the two column-mapping files (genmodel
    # then encodes every column of the encoding map, in its HashMap's order): the
    # multinomial one above with those files left out.
    def te_legacy():
        name = "target_encoder_legacy"
        src = os.path.join(g.out, "target_encoder_multinomial.zip")
        zpath = os.path.join(g.out, name + ".zip")
        drop = {"feature_engineering/target_encoding/input_encoding_columns_map.ini",
                "feature_engineering/target_encoding/input_output_columns_map.ini"}
        with zipfile.ZipFile(src) as zi, zipfile.ZipFile(zpath, "w", zipfile.ZIP_DEFLATED) as zo:
            for item in zi.infolist():
                if item.filename not in drop:
                    zo.writestr(item, zi.read(item.filename))
        export_wrapper(g, name, zpath, te_score, lambda *_: None,
                       note="target_encoder_multinomial.zip without its column-mapping files, the "
                            "layout of h2o 3.26-3.32")
    step("target_encoder_legacy", te_legacy)

    # ---------------- Word2Vec scored from a file with blank lines (each one a row with a
    # missing word, as PredictCsv and the wrapper read it); reference from W2VPredict
    def w2v_blank_lines():
        name = "word2vec_blank_lines"
        fw = g.frame(name + "_train", words, ["words"], TYPES, na_token="NA")
        m = H2OWord2vecEstimator(model_id=name, vec_size=3, window_size=2, epochs=5, min_word_freq=1,
                                 sent_sample_rate=0.0, init_learning_rate=0.025)
        m.train(training_frame=fw)
        tmp = m.download_mojo(path=g.work, get_genmodel_jar=True)
        zpath = os.path.join(g.out, name + ".zip")
        shutil.move(tmp, zpath)
        info, cols, _ = read_mojo_ini(zpath)
        # 12 rows: two blank lines, a quoted empty cell, NA and an unknown word
        lines = ["cat", "dog", "", "car", "zebra", "", "rain", '""', "sky", "NA", "storm", "road"]
        in_path = os.path.join(g.out, name + ".input.csv")
        with open(in_path, "w", newline="") as f:
            f.write(cols[0] + "\n" + "".join(l + "\n" for l in lines))
        src = os.path.join(g.work, "W2VPredict.java")
        with open(src, "w") as f:
            f.write(W2V_JAVA)
        subprocess.run(["javac", "-cp", g.jar, "-d", g.work, src], check=True)
        hex_path = os.path.join(g.work, name + ".predictions.hex.csv")
        subprocess.run(["java", "-cp", g.jar + os.pathsep + g.work, "W2VPredict", zpath, in_path, hex_path],
                       check=True)
        header, rows = read_csv(hex_path)
        conv = [[hex_to_repr(v) for v in r] for r in rows]
        assert len(conv) == len(lines), (len(conv), len(lines))
        with open(os.path.join(g.out, name + ".predictions.csv"), "w", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(header)
            w.writerows(conv)
        inputs, contrib = wrapper_info(g, name, zpath)
        g.expected.append({
            "name": name, "mojo": name + ".zip", "input": name + ".input.csv",
            "predictions": name + ".predictions.csv", "algo": info.get("algo"),
            "algorithm": info.get("algorithm"), "category": info.get("category"),
            "supervised": info.get("supervised") == "true", "mojo_version": info.get("mojo_version"),
            "h2o_version": info.get("h2o_version"),
            "inputs": [{"name": i["name"], "type": "String"} for i in inputs], "outputs": header,
            "domains": {}, "n_rows": len(conv),
            "note": "input has blank lines (a row each, missing word); reference by "
                    "EasyPredictModelWrapper.predictWord2Vec; NA = unknown/missing word",
        })
        note_contributions(g, name, contrib)
        g.sizes.append(name + ".zip")
    step("word2vec_blank_lines", w2v_blank_lines)


if __name__ == "__main__":
    sys.exit(main())
