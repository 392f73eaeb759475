#!/usr/bin/env python3
"""Small H2O-3 MOJOs for the model variants testdata/h2o3 does not cover, with
h2o-genmodel's predictions for them.

testdata/h2o3 has one MOJO per algorithm and category. The native scorer also claims
the other GBM distributions, DRF double trees, GLM gamma/inverse, dropped first levels
and offsets, multinomial and dart XGBoost, Deep Learning dropout activations and dropped first levels, stacked
ensembles over regression and multinomial models with a logit transform, the isolation
forest anomaly flag, unstandardized k-means, and regularized GLRM. This script trains
each of those on synthetic data (numpy, fixed seed), exports the MOJO to
``variants/<name>.zip`` (without ``experimental/``, which scoring never reads, to keep
the files small) and writes ``variants/<name>.input.csv`` (30 rows with missing cells
and unseen levels) and ``variants/<name>.predictions.csv`` (genmodel's ``PredictCsv``,
hex floats rewritten as shortest round-trip decimals).

Run from the repository root (h2o 3.46.0.11 and the genmodel jar of the same version,
see testdata/h2o3/README.md)::

    /tmp/h2o-venv/bin/python runtime-shim/h2o3-scorer/tests/reference/generate_variants.py \\
        --jar /tmp/h2o-genmodel.jar
"""

import argparse
import csv
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile

import numpy as np
import h2o
from h2o.estimators import (
    H2ODeepLearningEstimator,
    H2OGeneralizedLinearEstimator,
    H2OGeneralizedLowRankEstimator,
    H2OGradientBoostingEstimator,
    H2OIsolationForestEstimator,
    H2OKMeansEstimator,
    H2OPrincipalComponentAnalysisEstimator,
    H2ORandomForestEstimator,
    H2OStackedEnsembleEstimator,
    H2OXGBoostEstimator,
)

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "variants")
COLORS = ["red", "green", "blue", "yellow"]
FEATURES = ["x1", "x2", "x3", "color"]


def make_data(rng, n):
    x1 = rng.normal(0, 1, n)
    x2 = rng.uniform(0, 10, n)
    x3 = rng.poisson(3, n).astype(float)
    color = rng.choice(COLORS, n)
    cidx = np.array([COLORS.index(c) for c in color])
    lin = 0.8 * x1 - 0.3 * (x2 - 5) + 0.2 * x3 + 0.5 * (cidx == 0) - 0.4 * (cidx == 3)
    off = rng.uniform(-0.5, 0.5, n)
    rows = {
        "x1": x1, "x2": x2, "x3": x3, "color": color, "off": off,
        "label": np.where(lin + rng.normal(0, 1, n) > 0, "yes", "no"),
        "species": np.array(["setosa", "versicolor", "virginica"])[
            np.digitize(lin + rng.normal(0, 0.7, n), [-0.7, 0.7])],
        "y": 10 + 2 * lin + rng.normal(0, 1, n),
        "count": rng.poisson(np.exp(0.3 * lin + 0.5)).astype(float),
        "pos": rng.gamma(2.0, np.exp(0.2 * lin) + 0.5, n),
        "claim": np.where(rng.uniform(size=n) < 0.4, 0.0, rng.gamma(2.0, np.exp(0.3 * lin), n)),
    }
    # Gaps in the training data, so the trees learn NA directions.
    for col, frac in (("x1", 0.1), ("x2", 0.05), ("color", 0.08)):
        mask = rng.uniform(size=n) < frac
        rows[col] = np.where(mask, None, rows[col].astype(object))
    return rows


def write_frame(path, rows, cols):
    with open(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(cols)
        n = len(rows[cols[0]])
        for i in range(n):
            out = []
            for c in cols:
                v = rows[c][i]
                if v is None:
                    out.append("")
                elif isinstance(v, (float, np.floating)):
                    out.append(repr(round(float(v), 3)))
                else:
                    out.append(str(v))
            w.writerow(out)


def scoring_rows(rng, inputs, domains):
    """30 rows: an all-missing row, unseen levels, random gaps (never in `off`)."""
    data = make_data(rng, 30)
    rows = []
    for i in range(30):
        row = []
        for c in inputs:
            v = data[c][i] if c in data else None
            if c in domains:
                if i in (7, 21):
                    v = "purple" if i == 7 else "UNSEEN_LEVEL"
                elif v is not None and v not in domains[c]:
                    v = domains[c][0]
            if c != "off" and (i == 13 or rng.uniform() < 0.07):
                v = None
            row.append("" if v is None else (repr(round(float(v), 3)) if not isinstance(v, str) else v))
        rows.append(row)
    return rows


def read_ini(path):
    with zipfile.ZipFile(path) as z:
        text = z.read("model.ini").decode("utf-8")
        info, cols, doms, section = {}, [], {}, None
        for line in text.splitlines():
            line = line.strip()
            if not line:
                continue
            if line in ("[info]", "[columns]", "[domains]"):
                section = line
            elif section == "[info]":
                k, v = line.split("=", 1)
                info[k.strip()] = v.strip()
            elif section == "[columns]":
                cols.append(line)
            elif section == "[domains]":
                i, rest = line.split(":", 1)
                n, f = rest.strip().split(" ", 1)
                levels = z.read("domains/" + f).decode("utf-8").splitlines()
                doms[cols[int(i)]] = [l[1:-1] if l.startswith('"') else l for l in levels]
    return info, cols, doms


def export(model, name, jar, rng):
    with tempfile.TemporaryDirectory() as tmp:
        raw = model.download_mojo(path=tmp)
        dest = os.path.join(OUT, name + ".zip")
        with zipfile.ZipFile(raw) as src, zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as w:
            for item in src.infolist():
                if "experimental/" not in item.filename:
                    w.writestr(item.filename, src.read(item.filename))
    info, cols, doms = read_ini(dest)
    inputs = cols[:-1] if info.get("supervised") == "true" else cols
    in_path = os.path.join(OUT, name + ".input.csv")
    with open(in_path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(inputs)
        w.writerows(scoring_rows(rng, inputs, doms))
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "out.csv")
        r = subprocess.run(["java", "-cp", jar, "hex.genmodel.tools.PredictCsv", "--mojo", dest,
                            "--input", in_path, "--output", out], capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit("PredictCsv failed on %s:\n%s\n%s" % (name, r.stdout, r.stderr))
        with open(out, newline="") as f:
            pred = list(csv.reader(f))
    with open(os.path.join(OUT, name + ".predictions.csv"), "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(pred[0])
        for row in pred[1:]:
            w.writerow([repr(float.fromhex(c)) if "0x" in c else c for c in row])
    print("%-28s %s / %s, %d bytes" % (name, info.get("algo"), info.get("category"),
                                        os.path.getsize(dest)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--jar", default="/tmp/h2o-genmodel.jar")
    ap.add_argument("--port", type=int, default=54779)
    args = ap.parse_args()
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(4321)
    work = tempfile.mkdtemp()
    train_csv = os.path.join(work, "train.csv")
    data = make_data(rng, 400)
    cols = FEATURES + ["off", "label", "species", "y", "count", "pos", "claim"]
    write_frame(train_csv, data, cols)
    h2o.init(max_mem_size="1G", nthreads=1, port=args.port)
    try:
        fr = h2o.import_file(train_csv, col_types={"color": "enum", "label": "enum",
                                                   "species": "enum"})
        X = FEATURES
        S = dict(seed=1234)
        T = dict(ntrees=5, max_depth=4, **S)

        def gbm(name, y, **kw):
            m = H2OGradientBoostingEstimator(**T, **kw)
            m.train(x=X, y=y, training_frame=fr)
            export(m, name, args.jar, rng)
            return m

        gbm("gbm_poisson", "count", distribution="poisson")
        gbm("gbm_gamma", "pos", distribution="gamma")
        gbm("gbm_tweedie", "claim", distribution="tweedie", tweedie_power=1.5)
        gbm("gbm_laplace", "y", distribution="laplace")
        gbm("gbm_quantile", "y", distribution="quantile", quantile_alpha=0.3)
        gbm("gbm_huber", "y", distribution="huber", huber_alpha=0.8)
        gbm("gbm_balanced", "label", distribution="bernoulli", balance_classes=True)
        gbm("gbm_offset", "y", distribution="gaussian", offset_column="off")

        m = H2ORandomForestEstimator(binomial_double_trees=True, **T)
        m.train(x=X, y="label", training_frame=fr)
        export(m, "drf_double_trees", args.jar, rng)

        m = H2OGeneralizedLinearEstimator(family="gamma", link="inverse", **S)
        m.train(x=X, y="pos", training_frame=fr)
        export(m, "glm_gamma_inverse", args.jar, rng)
        m = H2OGeneralizedLinearEstimator(family="binomial", lambda_=0, **S)  # unregularized: first level dropped
        m.train(x=X, y="label", training_frame=fr)
        export(m, "glm_drop_first_level", args.jar, rng)
        m = H2OGeneralizedLinearEstimator(family="poisson", offset_column="off", **S)
        m.train(x=X, y="count", training_frame=fr)
        export(m, "glm_poisson_offset", args.jar, rng)

        m = H2OXGBoostEstimator(ntrees=5, max_depth=3, **S)
        m.train(x=X, y="species", training_frame=fr)
        export(m, "xgboost_multinomial", args.jar, rng)
        m = H2OXGBoostEstimator(ntrees=5, max_depth=3, booster="dart", **S)
        m.train(x=X, y="y", training_frame=fr)
        export(m, "xgboost_dart", args.jar, rng)

        m = H2ODeepLearningEstimator(hidden=[6, 4], epochs=5, activation="TanhWithDropout",
                                     hidden_dropout_ratios=[0.2, 0.1], reproducible=True, **S)
        m.train(x=X, y="species", training_frame=fr)
        export(m, "deeplearning_multinomial_dropout", args.jar, rng)
        m = H2ODeepLearningEstimator(hidden=[9], epochs=5, activation="RectifierWithDropout",
                                     use_all_factor_levels=False, reproducible=True, **S)
        m.train(x=X, y="count", training_frame=fr)
        export(m, "deeplearning_rectifier_dropout", args.jar, rng)

        m = H2OKMeansEstimator(k=3, standardize=False, **S)
        m.train(x=X, training_frame=fr)
        export(m, "kmeans_unstandardized", args.jar, rng)

        m = H2OIsolationForestEstimator(ntrees=7, contamination=0.1, **S)
        m.train(x=X, training_frame=fr)
        export(m, "isolation_forest_flag", args.jar, rng)

        cv = dict(nfolds=3, fold_assignment="Modulo", keep_cross_validation_predictions=True)
        g = H2OGradientBoostingEstimator(**T, **cv)
        g.train(x=X, y="y", training_frame=fr)
        l = H2OGeneralizedLinearEstimator(**cv, **S)
        l.train(x=X, y="y", training_frame=fr)
        se = H2OStackedEnsembleEstimator(base_models=[g, l], **S)
        se.train(x=X, y="y", training_frame=fr)
        export(se, "stacked_ensemble_regression", args.jar, rng)
        g = H2OGradientBoostingEstimator(**T, **cv)
        g.train(x=X, y="species", training_frame=fr)
        d = H2ORandomForestEstimator(**T, **cv)
        d.train(x=X, y="species", training_frame=fr)
        se = H2OStackedEnsembleEstimator(base_models=[g, d], metalearner_transform="Logit", **S)
        se.train(x=X, y="species", training_frame=fr)
        export(se, "stacked_ensemble_multinomial_logit", args.jar, rng)

        m = H2OGeneralizedLowRankEstimator(k=2, regularization_x="L1", gamma_x=0.05,
                                           regularization_y="Quadratic", gamma_y=0.05,
                                           max_iterations=50, **S)
        m.train(x=X, training_frame=fr)
        export(m, "glrm_l1", args.jar, rng)
        m = H2OPrincipalComponentAnalysisEstimator(k=2, use_all_factor_levels=True,
                                                   transform="STANDARDIZE", **S)
        m.train(x=X, training_frame=fr)
        export(m, "pca_all_levels", args.jar, rng)
    finally:
        h2o.cluster().shutdown()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
