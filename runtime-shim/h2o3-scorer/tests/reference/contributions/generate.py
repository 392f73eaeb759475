#!/usr/bin/env python3
"""Reference prediction contributions (SHAP values) of h2o-genmodel for tree MOJOs.

For every model below, genmodel's contributions of the rows of the model's existing
reference input (``testdata/h2o3/<name>.input.csv``, ``../variants/<name>.input.csv`` or,
for conformance MOJOs, ``../<name>.input.csv``) are written to
``<name>.contributions.csv`` next to this script: the header is genmodel's
``getContributionNames()`` (features, then ``BiasTerm``), each cell the exact ``float``
genmodel computed, as Python's shortest decimal of that value widened to a double.

GBM and XGBoost go through ``PredictCsv --predictContributions`` (hex output, so nothing
is rounded). ``PredictCsv`` cannot do DRF: it loads MOJOs without
``experimental/modelDetails.json`` and genmodel's DRF contributions need the variable
importances from it (``PredictCsv`` dies with a NullPointerException). DRF models therefore
go through a small driver that does what ``PredictCsv`` does (``RowData`` without the
cells ``""``, ``NA``, ``N/A``, ``-``; unknown levels as NA; ``EasyPredictModelWrapper``
with contributions enabled) on a MOJO loaded *with* its metadata. The driver is checked
against ``PredictCsv`` on every GBM and XGBoost model here, which must agree bit for bit.

The models genmodel refuses (multinomial, DRF with ``binomial_double_trees``) are checked
to be refused by genmodel too; the Rust test asserts the native scorer refuses them.

Usage (from the repository root; needs java, javac and the h2o-genmodel.jar of h2o
3.46.0.11, see testdata/h2o3/generate.py)::

    python3 runtime-shim/h2o3-scorer/tests/reference/contributions/generate.py \\
        --jar /tmp/h2o-genmodel.jar --conformance ../shared/conformance
"""

import argparse
import csv
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REFERENCE = os.path.dirname(HERE)
REPO = os.path.abspath(os.path.join(HERE, "..", "..", "..", "..", ".."))
TESTDATA = os.path.join(REPO, "testdata", "h2o3")
VARIANTS = os.path.join(REFERENCE, "variants")

# (name, where the MOJO and its input are: testdata | variants | conformance)
MODELS = [
    ("gbm_binomial", "testdata"),
    ("gbm_binomial_numlabels", "testdata"),
    ("gbm_regression", "testdata"),
    ("drf_binomial", "testdata"),
    ("drf_regression", "testdata"),
    ("xgboost_binomial", "testdata"),
    ("xgboost_regression", "testdata"),
    ("gbm_poisson", "variants"),
    ("gbm_gamma", "variants"),
    ("gbm_tweedie", "variants"),
    ("gbm_laplace", "variants"),
    ("gbm_quantile", "variants"),
    ("gbm_huber", "variants"),
    ("gbm_balanced", "variants"),
    ("gbm_offset", "variants"),
    ("xgboost_dart", "variants"),
    ("sw_binom_model_prostate", "conformance"),
    ("sw_gbm_cv", "conformance"),
    ("sw_regre_model_prostate", "conformance"),
]

# Models genmodel refuses, with a piece of its message.
REFUSED = [
    ("gbm_multinomial", "testdata", "multinomial"),
    ("drf_multinomial", "testdata", "multinomial"),
    ("xgboost_multinomial", "variants", "multinomial"),
    ("drf_double_trees", "variants", "binomial_double_trees"),
    ("glm_binomial", "testdata", "only with DRF, GBM, or XGBoost"),
]

DRIVER = r"""
import hex.genmodel.MojoModel;
import hex.genmodel.easy.EasyPredictModelWrapper;
import hex.genmodel.easy.RowData;
import java.io.*;
import java.nio.charset.StandardCharsets;
import java.nio.file.*;
import java.util.*;

public class ContributionsReference {
  public static void main(String[] args) throws Exception {
    MojoModel model = MojoModel.load(args[0], true);
    EasyPredictModelWrapper wrapper = new EasyPredictModelWrapper(
        new EasyPredictModelWrapper.Config()
            .setModel(model)
            .setConvertUnknownCategoricalLevelsToNa(true)
            .setEnableContributions(true));
    List<String> lines = Files.readAllLines(Paths.get(args[1]), StandardCharsets.UTF_8);
    String[] header = lines.get(0).split(",", -1);
    try (PrintWriter out = new PrintWriter(args[2], "UTF-8")) {
      out.println(String.join(",", wrapper.getContributionNames()));
      for (String line : lines.subList(1, lines.size())) {
        String[] cells = line.split(",", -1);
        RowData row = new RowData();
        for (int i = 0; i < Math.min(header.length, cells.length); i++) {
          String v = cells[i];
          if (v.isEmpty() || v.equals("NA") || v.equals("N/A") || v.equals("-")) continue;
          row.put(header[i], v);
        }
        float[] c = wrapper.predictContributions(row);
        StringJoiner j = new StringJoiner(",");
        for (float f : c) j.add(Double.toHexString(f));
        out.println(j);
      }
    }
  }
}
"""


def paths(name, where, conformance):
    if where == "testdata":
        return os.path.join(TESTDATA, name + ".zip"), os.path.join(TESTDATA, name + ".input.csv")
    if where == "variants":
        return os.path.join(VARIANTS, name + ".zip"), os.path.join(VARIANTS, name + ".input.csv")
    return (os.path.join(conformance, "h2o3", name + ".mojo"),
            os.path.join(REFERENCE, name + ".input.csv"))


def read(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


def predict_csv(jar, mojo, inp, out):
    """PredictCsv --predictContributions; returns (rows, error text)."""
    r = subprocess.run(["java", "-cp", jar, "hex.genmodel.tools.PredictCsv", "--mojo", mojo,
                        "--input", inp, "--output", out, "--predictContributions"],
                       capture_output=True, text=True)
    if r.returncode != 0 or not os.path.exists(out):
        return None, r.stdout + r.stderr
    return read(out), None


def driver(jar, classes, mojo, inp, out):
    r = subprocess.run(["java", "-cp", jar + os.pathsep + classes, "ContributionsReference",
                        mojo, inp, out], capture_output=True, text=True)
    if r.returncode != 0:
        return None, r.stdout + r.stderr
    return read(out), None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--jar", default="/tmp/h2o-genmodel.jar")
    ap.add_argument("--conformance",
                    default=os.environ.get("CONFORMANCE_DIR", os.path.join(REPO, "..", "shared", "conformance")))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "ContributionsReference.java")
        with open(src, "w") as f:
            f.write(DRIVER)
        subprocess.run(["javac", "-cp", args.jar, "-d", tmp, src], check=True)
        for name, where in MODELS:
            mojo, inp = paths(name, where, args.conformance)
            out = os.path.join(tmp, name + ".csv")
            rows, err = predict_csv(args.jar, mojo, inp, out)
            via = "PredictCsv"
            drv, derr = driver(args.jar, tmp, mojo, inp, os.path.join(tmp, name + ".driver.csv"))
            if drv is None:
                sys.exit("driver failed on %s:\n%s" % (name, derr))
            if rows is None:
                if not name.startswith("drf_"):
                    sys.exit("PredictCsv failed on %s:\n%s" % (name, err))
                cause = next((l for l in err.splitlines() if "Exception" in l), "failed")
                rows, via = drv, "driver (PredictCsv: %s)" % cause.strip()[:70]
            elif rows != drv:
                sys.exit("driver and PredictCsv differ on %s" % name)
            with open(os.path.join(HERE, name + ".contributions.csv"), "w", newline="") as f:
                w = csv.writer(f, lineterminator="\n")
                w.writerow(rows[0])
                for row in rows[1:]:
                    w.writerow([repr(float.fromhex(c)) for c in row])
            print("%s: %d rows, %d contributions via %s" % (name, len(rows) - 1, len(rows[0]), via))
        for name, where, needle in REFUSED:
            mojo, inp = paths(name, where, args.conformance)
            rows, err = driver(args.jar, tmp, mojo, inp, os.path.join(tmp, name + ".csv"))
            if rows is not None or needle not in err:
                sys.exit("genmodel did not refuse %s as expected: %s" % (name, err))
            print("%s: refused by genmodel (%s)" % (name, needle))


if __name__ == "__main__":
    main()
