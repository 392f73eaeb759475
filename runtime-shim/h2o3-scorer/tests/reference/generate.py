#!/usr/bin/env python3
"""Reference predictions of h2o-genmodel for the conformance MOJOs.

The conformance MOJOs (``$CONFORMANCE_DIR/h2o3``, default ``../shared/conformance``
relative to the repository root) are never copied into the repository, and CI has no
JVM, so this script is run once by hand and its output committed next to it:

* ``<name>.input.csv``: scoring rows drawn for the MOJO's input columns (seeded, so a
  rerun writes the same rows). Tree models get values at, just around and between
  their split thresholds (read with genmodel's ``PrintMojo --format json``), so both
  sides of every split are exercised; other models get values spread over a plausible
  range. Every file has an all-missing row, scattered missing cells and, for
  categorical columns, an unseen level.
* ``<name>.predictions.csv``: ``PredictCsv`` output for those rows, run without
  ``--decimal`` so every double is an exact Java hex float, rewritten as Python's
  shortest round-trip decimal (``repr(float.fromhex(s))``). Labels and ``NA`` are kept.

Usage (from the repository root; needs java and h2o-genmodel.jar, here the one of
h2o 3.46.0.11 that testdata/h2o3/generate.py downloads)::

    python3 runtime-shim/h2o3-scorer/tests/reference/generate.py \
        --jar /tmp/h2o-genmodel.jar --conformance ../shared/conformance
"""

import argparse
import csv
import json
import os
import random
import struct
import subprocess
import sys
import tempfile
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))

# (name of the reference files, MOJO file under h2o3/); the seed is the index
MODELS = [
    ("sw_binom_model_prostate", "sw_binom_model_prostate.mojo"),
    ("sw_gbm_cv", "sw_gbm_cv.mojo"),
    ("sw_multi_model_iris", "sw_multi_model_iris.mojo"),
    ("sw_regre_model_prostate", "sw_regre_model_prostate.mojo"),
    ("sw_isolation_forest", "sw_isolation_forest.mojo"),
    ("sw_deep_learning_prostate", "sw_deep_learning_prostate.mojo"),
    ("sw_deep_learning_airlines_categoricals", "sw_deep_learning_airlines_categoricals.zip"),
    ("sw_deep_learning_auto_encoder", "sw_deep_learning_auto_encoder.mojo"),
    ("sw_stacked_ensemble_prostate", "sw_stacked_ensemble_prostate.mojo"),
    ("sw_pca_prostate", "sw_pca_prostate.mojo"),
    ("sw_glrm", "sw_glrm.mojo"),
    ("sw_word2vec", "sw_word2vec.mojo"),
]
N_ROWS = 60

# Word2Vec MOJOs cannot be scored by PredictCsv ("Getting output column names for model
# category 'WordEmbedding' is not supported"); this driver asks genmodel's
# EasyPredictModelWrapper.predictWord2Vec for each word instead and prints hex floats.
W2V_DRIVER = r"""
import hex.genmodel.MojoModel;
import hex.genmodel.easy.EasyPredictModelWrapper;
import hex.genmodel.easy.RowData;
import hex.genmodel.easy.prediction.Word2VecPrediction;
import java.io.*;
import java.nio.charset.StandardCharsets;
import java.nio.file.*;
import java.util.*;

public class Word2VecReference {
  public static void main(String[] args) throws Exception {
    MojoModel model = MojoModel.load(args[0]);
    EasyPredictModelWrapper wrapper =
        new EasyPredictModelWrapper(new EasyPredictModelWrapper.Config().setModel(model));
    int size = ((hex.genmodel.algos.word2vec.WordEmbeddingModel) model).getVecSize();
    String column = model.getNames()[0];
    List<String> lines = Files.readAllLines(Paths.get(args[1]), StandardCharsets.UTF_8);
    try (PrintWriter out = new PrintWriter(args[2], "UTF-8")) {
      StringJoiner header = new StringJoiner(",");
      for (int i = 1; i <= size; i++) header.add("C" + i);
      out.println(header);
      for (String word : lines.subList(1, lines.size())) {
        RowData row = new RowData();
        if (!word.isEmpty()) row.put(column, word);
        Word2VecPrediction p = wrapper.predictWord2Vec(row);
        float[] v = p.wordEmbeddings == null ? null : p.wordEmbeddings.get(column);
        StringJoiner cells = new StringJoiner(",");
        for (int i = 0; i < size; i++) cells.add(v == null ? "NA" : Double.toHexString(v[i]));
        out.println(cells);
      }
    }
  }
}
"""


def read_ini(zpath):
    with zipfile.ZipFile(zpath) as z:
        text = z.read("model.ini").decode("utf-8")
        section, info, columns, domains = None, {}, [], {}
        for line in text.splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if line in ("[info]", "[columns]", "[domains]"):
                section = line
                continue
            if section == "[info]":
                k, v = line.split("=", 1)
                info[k.strip()] = v.strip()
            elif section == "[columns]":
                columns.append(line)
            elif section == "[domains]":
                col, rest = line.split(":", 1)
                n, f = rest.strip().split(" ", 1)
                levels = [l for l in z.read("domains/" + f.strip()).decode("utf-8").splitlines()]
                domains[int(col)] = [l[1:-1].replace('""', '"') if l.startswith('"') else l
                                     for l in levels][: int(n)]
    return info, columns, domains


def thresholds(jar, zpath):
    """Split thresholds per column name, from PrintMojo's JSON (tree models only). The
    tree members of a stacked ensemble are copied to a zip of their own first."""
    out = {}
    _thresholds_of(jar, zpath, out)
    with zipfile.ZipFile(zpath) as z:
        prefixes = sorted({n[: n.index("model.ini")] for n in z.namelist()
                           if n.endswith("model.ini") and n != "model.ini"})
        for prefix in prefixes:
            with tempfile.TemporaryDirectory() as tmp:
                sub = os.path.join(tmp, "sub.zip")
                with zipfile.ZipFile(sub, "w") as w:
                    for n in z.namelist():
                        if n.startswith(prefix) and not n.endswith("/"):
                            w.writestr(n[len(prefix):], z.read(n))
                _thresholds_of(jar, sub, out)
    return out


def _thresholds_of(jar, zpath, out):
    r = subprocess.run(["java", "-cp", jar, "hex.genmodel.tools.PrintMojo", "--format", "json",
                        "-i", zpath], capture_output=True, text=True)
    if r.returncode != 0:
        return out

    def walk(node):
        if not isinstance(node, dict):
            return
        if "splitValue" in node and not node.get("isCategorical"):
            out.setdefault(node["colName"], set()).add(float(node["splitValue"]))
        for k in ("leftChild", "rightChild"):
            walk(node.get(k))

    # PrintMojo may print tree-consistency warnings before the JSON document.
    start = r.stdout.find('{\n  "params"')
    if start < 0:
        return out
    for t in json.loads(r.stdout[start:]).get("trees", []):
        walk(t.get("root"))
    return out


def as_float32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def parse_array(v):
    v = (v or "").strip()
    if not (v.startswith("[") and v.endswith("]")):
        return None
    return [float(x) for x in v[1:-1].split(",") if x.strip()]


def scales(info, inputs, domains):
    """(centre, spread) per numeric input from the model's own standardization keys."""
    for sub_key, mul_key in (("norm_sub", "norm_mul"), ("normSub", "normMul"),
                             ("standardize_means", "standardize_mults")):
        sub, mul = parse_array(info.get(sub_key)), parse_array(info.get(mul_key))
        if sub and mul:
            numeric = [n for i, n in enumerate(inputs) if i not in domains]
            if sub_key == "standardize_means":  # one entry per column, categoricals included
                numeric = list(inputs)
            return {n: (c, 1.0 / m if m else 1.0) for n, c, m in zip(numeric, sub, mul)}
    return {}


def numeric_value(rng, thr, scale=None):
    if thr:
        t = rng.choice(sorted(thr))
        lo, hi = min(thr), max(thr)
        span = max(hi - lo, 1.0)
        pick = rng.random()
        if pick < 0.25:
            return repr(as_float32(t))  # exactly the float threshold
        if pick < 0.45:
            return repr(t + rng.choice([-1, 1]) * 1e-4 * max(abs(t), 1.0))
        return "%.3f" % rng.uniform(lo - 0.2 * span, hi + 0.2 * span)
    if scale and scale[0] == scale[0]:
        centre, spread = scale
        return "%.3f" % rng.gauss(centre, 1.5 * spread)
    return "%.3f" % rng.uniform(-5, 100)


def rows_for(rng, inputs, domains, thr, scale):
    rows = [["" for _ in inputs]]  # all missing
    for r in range(1, N_ROWS):
        row = []
        for i, name in enumerate(inputs):
            if rng.random() < 0.08:
                row.append("")
            elif i in domains:
                levels = domains[i]
                row.append("UNSEEN_LEVEL" if rng.random() < 0.08 else rng.choice(levels))
            else:
                row.append(numeric_value(rng, thr.get(name), scale.get(name)))
        rows.append(row)
    return rows


def word2vec_reference(jar, zpath, name, seed):
    """Input words (vocabulary, unknown and missing) and genmodel's vectors for them."""
    with zipfile.ZipFile(zpath) as z:
        vocab = [w.strip() for w in z.read("vocabulary").decode("utf-8").splitlines()]
        info, columns, _ = read_ini(zpath)
    rng = random.Random(20240 + seed)
    words = [""] + [rng.choice(vocab + ["unknown_word", ""]) for _ in range(N_ROWS - 1)]
    in_path = os.path.join(HERE, name + ".input.csv")
    with open(in_path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(columns)
        for word in words:
            w.writerow([word])
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "Word2VecReference.java")
        with open(src, "w") as f:
            f.write(W2V_DRIVER)
        subprocess.run(["javac", "-cp", jar, "-d", tmp, src], check=True)
        plain = os.path.join(tmp, "words.txt")
        with open(plain, "w") as f:
            f.write("\n".join([columns[0]] + words) + "\n")
        out = os.path.join(tmp, "out.csv")
        subprocess.run(["java", "-cp", jar + os.pathsep + tmp, "Word2VecReference", zpath, plain, out],
                       check=True)
        with open(out, newline="") as f:
            pred = list(csv.reader(f))
    return pred


def hex_to_repr(s):
    """Java hex floats (``0x1.8p1``) to shortest decimal; labels and NA stay as written."""
    if "0x" in s:
        return repr(float.fromhex(s))
    return s


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--jar", default="/tmp/h2o-genmodel.jar")
    ap.add_argument("--conformance", default=os.environ.get("CONFORMANCE_DIR", "../shared/conformance"))
    args = ap.parse_args()
    for seed, (name, fname) in enumerate(MODELS):
        zpath = os.path.join(args.conformance, "h2o3", fname)
        info, columns, domains = read_ini(zpath)
        if info.get("category") == "WordEmbedding":
            pred = word2vec_reference(args.jar, zpath, name, seed)
            with open(os.path.join(HERE, name + ".predictions.csv"), "w", newline="") as f:
                w = csv.writer(f, lineterminator="\n")
                w.writerow(pred[0])
                for row in pred[1:]:
                    w.writerow([hex_to_repr(c) for c in row])
            print("%s: %d rows, %d outputs (word2vec driver)" % (name, len(pred) - 1, len(pred[0])))
            continue
        supervised = info.get("supervised") == "true"
        inputs = columns[:-1] if supervised else columns
        rng = random.Random(20240 + seed)
        rows = rows_for(rng, inputs, domains, thresholds(args.jar, zpath),
                        scales(info, inputs, domains))
        in_path = os.path.join(HERE, name + ".input.csv")
        with open(in_path, "w", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(inputs)
            w.writerows(rows)
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "out.csv")
            r = subprocess.run(["java", "-cp", args.jar, "hex.genmodel.tools.PredictCsv",
                                "--mojo", zpath, "--input", in_path, "--output", out],
                               capture_output=True, text=True)
            if r.returncode != 0:
                sys.exit("PredictCsv failed on %s:\n%s\n%s" % (name, r.stdout, r.stderr))
            with open(out, newline="") as f:
                pred = list(csv.reader(f))
        with open(os.path.join(HERE, name + ".predictions.csv"), "w", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(pred[0])
            for row in pred[1:]:
                w.writerow([hex_to_repr(c) for c in row])
        print("%s: %d rows, %d outputs (%s)" % (name, len(rows), len(pred[0]), ",".join(pred[0][:4])))


if __name__ == "__main__":
    main()
